"""Epoch checkpoints: a co-training run interrupted mid-way and started again continues from its last finished
epoch and writes the same files as a run never interrupted; `save_model` keeps the run's model where a group can
read it; on Slurm the job callable requeues itself."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForTokenClassification

from fslib.core.languages import MINI_LANGS
from fslib.engine.runner import run_dir, run_experiment
from fslib.engine.stages import Experiment
from fslib.store.config import RunConfig

SMALL = dict(epochs=2, learning_rate=3e-3, max_train_examples=240, max_eval_examples=40, progress=False,
             eval_batch_size=128, train_batch_size=16, target_dev_curves=False)


def config(mini_dir, tiny_model, output_dir, method="gradient-co-train", k=5, **overrides) -> RunConfig:
    return RunConfig(task="ner", method=method, k=k, seed=1, model=str(tiny_model), data_dir=str(mini_dir),
                     languages=list(MINI_LANGS), output_dir=str(output_dir), **{**SMALL, **overrides})


class Interrupted(Exception):
    """Stands for the kill: raised inside the real training loop, from its logging hook."""


def test_interrupted_co_training_resumes_to_the_same_files(mini_dir, tiny_model, tmp_path, monkeypatch):
    whole = config(mini_dir, tiny_model, tmp_path / "whole")
    run_experiment(whole)

    def interrupt_in_second_epoch(self, entry):  # the second epoch's steps are done, its evaluation is not
        if entry["kind"] == "epoch" and entry["epoch"] == 2:
            raise Interrupted

    resumed = config(mini_dir, tiny_model, tmp_path / "resumed")
    folder = run_dir(resumed)
    with monkeypatch.context() as patch:
        patch.setattr(Experiment, "on_log", interrupt_in_second_epoch)
        with pytest.raises(Interrupted):
            run_experiment(resumed)
    state = torch.load(folder / "checkpoint" / "state.pt", weights_only=True)
    assert state["epoch"] == 1 and state["outcome"]["steps"] > 0 and state["extra"]["rows"]  # epoch 1's dev rows
    assert not (folder / "results.csv").exists()
    torch.manual_seed(12345)  # whatever state the interrupted process left: the checkpoint brings its own

    run_experiment(resumed)
    for name in ("results.csv", "surgery.csv", "training.csv"):
        assert (folder / name).read_bytes() == (run_dir(whole) / name).read_bytes(), name
    assert not (folder / "checkpoint").exists()  # removed once the rows are written
    assert not (folder / "model").exists()  # save_model: none (the default) writes no model


def test_interrupted_source_training_resumes_to_the_same_model(mini_dir, tiny_model, tmp_path, monkeypatch):
    whole = Experiment(config(mini_dir, tiny_model, tmp_path / "whole", method="zero-shot", k=0)).source_model_dir()
    real_score, calls = Experiment.score, []

    def interrupt_second_evaluation(self, *args, **kwargs):  # source-training evaluates once per epoch
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted
        return real_score(self, *args, **kwargs)

    again = config(mini_dir, tiny_model, tmp_path / "resumed", method="zero-shot", k=0)
    with monkeypatch.context() as patch:
        patch.setattr(Experiment, "score", interrupt_second_evaluation)
        with pytest.raises(Interrupted):
            Experiment(again).source_model_dir()
    checkpoint = list((tmp_path / "resumed" / "source_models").glob("*.checkpoint"))
    assert len(checkpoint) == 1 and torch.load(checkpoint[0] / "state.pt", weights_only=True)["epoch"] == 1

    resumed = Experiment(again).source_model_dir()
    assert resumed.name == whole.name and not checkpoint[0].exists()
    records = [json.loads((folder / "source_training.json").read_text()) for folder in (whole, resumed)]
    for record in records:
        del record["trained_by"]
    assert records[0] == records[1] and len(records[0]["dev_curve"]) == 2
    weights = [load_file(folder / "model.safetensors") for folder in (whole, resumed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


@pytest.mark.parametrize("which", ["best", "last"])
def test_saved_model_loads_and_scores_as_its_rows_say(mini_dir, tiny_model, tmp_path, which):
    """`best` is the model the test rows measured; `last` the final weights, whose score is the dev row of the
    last evaluation. Evaluating every 3 steps makes the selected checkpoint an earlier one (asserted), so the two
    differ."""
    run = config(mini_dir, tiny_model, tmp_path, save_model=which, select_every_steps=3)
    rows = run_experiment(run)
    folder = run_dir(run) / "model"
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= {path.name for path in files}
    assert all(path.stat().st_mode & 0o040 for path in [folder, *files]), "not readable by the group"
    assert not list(tmp_path.rglob("*.partial"))

    model = AutoModelForTokenClassification.from_pretrained(folder)
    experiment = Experiment(run)
    dev = rows.query("split == 'dev' and lang == 'en'")
    test = rows.query("split == 'test' and lang == 'en'").iloc[0]
    assert test.step < dev.step.max()  # selected before the end: best and last are different weights
    if which == "best":
        assert experiment.score(model, "en", "test")["f1"] == test.value
    else:
        assert experiment.score(model, "en", "dev")["f1"] == dev[dev.step == dev.step.max()].value.item()
        assert experiment.score(model, "en", "dev")["f1"] != dev[dev.step == test.step].value.item()


def test_slurm_jobs_are_checkpointable_and_requeue_the_same_call():
    from submitit.helpers import Checkpointable, DelayedSubmission

    from fslib.batch.slurm import ResumableJob

    job = ResumableJob()
    payload = {"kind": "run", "config": {"task": "ner"}, "log": "worker.log"}
    assert isinstance(job, Checkpointable)
    again = job.checkpoint(payload)
    assert isinstance(again, DelayedSubmission)
    assert again.function is job and again.args == (payload,) and not again.kwargs
    restored = pickle.loads(pickle.dumps(again))  # what submitit stores for the requeued job
    assert isinstance(restored.function, ResumableJob) and restored.args == (payload,)
    with pytest.raises(TypeError, match="RunConfig.__init__"):  # the call is the worker's: it builds the config
        job(payload)
