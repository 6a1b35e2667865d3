"""The training log (loss and learning rate per interval and per epoch) from the kit's loop, TensorBoard event
files read back with TensorBoard's own reader, and a run that writes both, whose notebook helpers plot them."""

import pandas as pd
import pytest
import torch
from datasets import Dataset
from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

from fslib.analysis.notebook import loss_figure
from fslib.core.languages import MINI_LANGS
from fslib.engine.runner import run_dir, run_experiment
from fslib.engine.tracking import LOSS_FIGURE, TRAINING_COLUMNS, TensorBoardLog
from fslib.engine.training import StageSettings, train
from fslib.store.config import RunConfig

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def tiny_model():
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=40, num_labels=3,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return XLMRobertaForTokenClassification(config)


def collate(rows):
    return {"input_ids": torch.tensor([row["input_ids"] for row in rows]),
            "labels": torch.tensor([row["labels"] for row in rows]), "langs": [row["lang"] for row in rows]}


def features(n=12, length=8):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 50, (n, length), generator=generator)
    # a learnable rule: the label is the token id modulo 3
    return Dataset.from_list([{"input_ids": row.tolist(), "labels": (row % 3).tolist(), "lang": "en"} for row in ids])


def test_training_log_intervals_epochs_and_learning_rates():
    entries = []
    settings = StageSettings(epochs=2, batch_size=2, learning_rate=1e-2, precision="fp32")
    outcome = train(tiny_model(), features(), settings, collator=collate, seed=0, device=torch.device("cpu"),
                    description="co-training test", progress=False, log_every=4, on_log=entries.append)
    log = pd.DataFrame(outcome.training_log)
    assert list(log.columns) == TRAINING_COLUMNS and entries == outcome.training_log
    # 6 steps per epoch: intervals end every 4 steps (4, 8) and with each epoch (6, 12)...
    intervals = log[log.kind == "interval"]
    assert list(intervals.step) == [4, 6, 8, 12]
    assert list(log[log.kind == "epoch"].step) == [6, 12] and set(log.stage) == {"co-training test"}
    # ... each interval's rate is that of its last step: linear decay from 1e-2 over 12 steps, no warm-up
    for step, rate in zip(intervals.step, intervals.learning_rate):
        assert rate == pytest.approx(1e-2 * (1 - (step - 1) / 12))
    # an epoch's loss is the mean of its steps, so the step-weighted mean of its intervals
    first = intervals[intervals.epoch == 1]
    weights = first.step.diff().fillna(first.step.iloc[0])
    epoch_loss = log[(log.kind == "epoch") & (log.epoch == 1)].loss.item()
    assert epoch_loss == pytest.approx((first.loss * weights).sum() / weights.sum())
    assert log[log.kind == "epoch"].loss.iloc[1] < epoch_loss  # it learns


def test_tensorboard_event_files_read_back(tmp_path):
    board = TensorBoardLog(tmp_path / "tb")
    board({"stage": "adapting to qa", "kind": "interval", "epoch": 1, "step": 10, "loss": 0.5,
           "learning_rate": 2e-5})
    board({"stage": "adapting to qa", "kind": "epoch", "epoch": 1, "step": 12, "loss": 0.25, "learning_rate": 1e-5})
    board({"stage": "gradient-co-training ner", "kind": "surgery", "epoch": 1, "step": 12, "surgery_rate": 1.0,
           "conflict_rate": 0.5})
    board.scores("dev", "qa", {"f1": 61.5}, epoch=1)
    board.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars = {name: [(e.step, e.value) for e in events.Scalars(name)] for name in events.Tags()["scalars"]}
    assert scalars == {"adapting_to_qa/loss": [(10, 0.5)],
                       "adapting_to_qa/learning_rate": [(10, pytest.approx(2e-5))],
                       "adapting_to_qa/epoch_loss": [(12, 0.25)],
                       "gradient-co-training_ner/surgery/surgery_rate": [(12, 1.0)],
                       "gradient-co-training_ner/surgery/conflict_rate": [(12, 0.5)],
                       "dev/qa/f1": [(1, 61.5)]}


def test_a_run_writes_its_training_table_and_tensorboard(mini_dir, tiny_model, tmp_path):
    config = RunConfig(task="ner", method="gradient-co-train", k=1, seed=1, model=str(tiny_model),
                       data_dir=str(mini_dir), languages=list(MINI_LANGS)[:3], output_dir=str(tmp_path), epochs=2,
                       learning_rate=1e-3, max_train_examples=100, max_eval_examples=20, progress=False,
                       tensorboard=True)
    run_experiment(config)
    folder = run_dir(config)
    training = pd.read_csv(folder / "training.csv")
    assert set(training.stage) == {"gradient-co-training ner"} and set(training.kind) == {"interval", "epoch"}
    assert training.loss.notna().all() and (training.learning_rate > 0).all()
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"gradient-co-training_ner/loss", "gradient-co-training_ner/learning_rate",
            "gradient-co-training_ner/surgery/surgery_rate", "dev/en/f1"} <= tags
    assert [e.step for e in events.Scalars("dev/en/f1")] == [1, 2]
    shown = loss_figure(config)  # the saved figure, shown in the notebook
    assert shown.format == "png" and shown.data == (folder / LOSS_FIGURE).read_bytes()
