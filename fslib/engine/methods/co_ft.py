from fslib.core.languages import SOURCE_LANG
from fslib.engine.methods.base import Method
from fslib.engine.stages import Experiment


class CoFT(Method):
    """Co-fine-tuning (paper §3.2): target-adapt the source-trained model once, on the concatenated shots of ALL
    targets; last checkpoint. The source language keeps the source model's score, as in the paper's tables."""

    def train_and_evaluate(self, experiment: Experiment) -> None:
        source, outcome = experiment.source_model()
        experiment.test_rows(source, [SOURCE_LANG], outcome)
        del source  # adapting starts from a fresh copy: do not keep this one on the device
        model, outcome = experiment.adapt(experiment.targets, select_on_dev=False)
        experiment.test_rows(model, [lang for lang in experiment.languages if lang != SOURCE_LANG], outcome)
