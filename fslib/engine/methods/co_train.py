from fslib.engine.diagnostics import record_gradient_similarity
from fslib.engine.methods.base import Method
from fslib.engine.stages import Experiment


class NaiveCoTrain(Method):
    """Naive co-training (paper §3.3): one step from the pre-trained model on the source train set and the shots
    of all targets, shuffled together; best checkpoint on the source dev set."""

    surgery = False

    def train_and_evaluate(self, experiment: Experiment) -> None:
        model, outcome = experiment.co_train(surgery=self.surgery)
        experiment.test_rows(model, experiment.languages, outcome)
        if experiment.config.gradient_similarity:
            record_gradient_similarity(experiment, model)


class GradientCoTrain(NaiveCoTrain):
    """Co-training with stochastic gradient surgery (paper §3.5, Algorithm 1). With `target_langs` it is also
    the paper's gradient-single and gradient-subset."""

    surgery = True
