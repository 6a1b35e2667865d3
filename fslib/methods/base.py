"""The shared base of the methods: each method is a few lines composing the stages of `fslib.stages.Run`."""

from __future__ import annotations

from fslib.stages import Run


class Method:
    """One row of the paper's results tables. `run` trains what the method trains and records the final test
    rows (and any curves) on `run`."""

    name: str
    uses_source_model = False  # starts from the source-trained model (which a batch trains first)

    def run(self, run: Run) -> None:
        raise NotImplementedError
