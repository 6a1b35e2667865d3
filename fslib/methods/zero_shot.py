from fslib.methods.base import Method
from fslib.stages import Run


class ZeroShot(Method):
    """Zero-shot cross-lingual transfer (K=0): source-training only, best checkpoint on the source dev set,
    evaluated on every language."""

    name = "zero-shot"
    uses_source_model = True

    def run(self, run: Run) -> None:
        model, outcome = run.source_model()
        run.source_dev_rows()
        run.test_rows(model, run.languages, outcome)
