from fslib.core.languages import SOURCE_LANG
from fslib.core.progress import tqdm
from fslib.engine.methods.base import Method
from fslib.engine.stages import Experiment


class OrdFS(Method):
    """Ordinary few-shot transfer (Lauscher et al., 2020): target-adapt the source-trained model to ONE target
    language's K shots, one model per target, last checkpoint. The source language keeps the source model's
    score, as in the paper's tables."""

    select_on_dev = False

    def train_and_evaluate(self, experiment: Experiment) -> None:
        source, outcome = experiment.source_model()
        experiment.test_rows(source, [SOURCE_LANG], outcome)
        del source  # each target starts from a fresh copy: do not keep this one on the device
        for lang in tqdm(experiment.targets, desc=f"{self.name}: one model per target",
                         disable=not experiment.config.progress):
            model, outcome = experiment.adapt([lang], select_on_dev=self.select_on_dev)
            experiment.test_rows(model, [lang], outcome)


class OrdFSDev(OrdFS):
    """ord-FS with the checkpoint picked on the target language's full dev set (Zhao et al., 2021): the
    unrealistic setting the paper argues against, kept as a baseline."""

    select_on_dev = True
