from fslib.diagnostics import record_gradient_similarity
from fslib.methods.base import Method
from fslib.stages import Run


class NaiveCoTrain(Method):
    """Naive co-training (paper §3.3): one step from the pre-trained model on the source train set and the shots
    of all targets, shuffled together; best checkpoint on the source dev set."""

    name = "naive-co-train"
    surgery = False

    def run(self, run: Run) -> None:
        model, outcome = run.co_train(surgery=self.surgery)
        run.test_rows(model, run.languages, outcome)
        if run.config.gradient_similarity:
            record_gradient_similarity(run, model)


class GradientCoTrain(NaiveCoTrain):
    """Co-training with stochastic gradient surgery (paper §3.5, Algorithm 1). With `target_langs` it is also
    the paper's gradient-single and gradient-subset."""

    name = "gradient-co-train"
    surgery = True
