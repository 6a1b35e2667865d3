from fslib.engine.methods.base import Method
from fslib.engine.stages import Experiment


class ZeroShot(Method):
    """Zero-shot cross-lingual transfer (K=0): source-training only, best checkpoint on the source dev set,
    evaluated on every language."""

    def train_and_evaluate(self, experiment: Experiment) -> None:
        model, outcome = experiment.source_model()
        experiment.source_dev_rows()
        experiment.test_rows(model, experiment.languages, outcome)
        experiment.keep_source_model()
