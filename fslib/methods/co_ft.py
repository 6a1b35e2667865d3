from fslib.languages import SOURCE_LANG
from fslib.methods.base import Method
from fslib.stages import Run


class CoFT(Method):
    """Co-fine-tuning (paper §3.2): target-adapt the source-trained model once, on the concatenated shots of ALL
    targets; last checkpoint. The source language keeps the source model's score, as in the paper's tables."""

    name = "co-FT"
    uses_source_model = True

    def run(self, run: Run) -> None:
        source, outcome = run.source_model()
        run.test_rows(source, [SOURCE_LANG], outcome)
        del source  # adapting starts from a fresh copy: do not keep this one on the device
        model, outcome = run.adapt(run.targets, select_on_dev=False)
        run.test_rows(model, [lang for lang in run.languages if lang != SOURCE_LANG], outcome)
