"""The shared base of the methods: each method is a few lines composing the stages of
`fslib.engine.stages.Experiment`."""

from __future__ import annotations

from fslib.engine.stages import Experiment


class Method:
    """One row of the paper's results tables, registered under its name in fslib.core.methods.METHODS.
    `train_and_evaluate` trains what the method trains and records the final test rows (and any curves) on the
    experiment."""

    def __init__(self, name: str):
        self.name = name

    def train_and_evaluate(self, experiment: Experiment) -> None:
        raise NotImplementedError
