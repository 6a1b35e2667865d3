"""SurgeryTrainer: a few `transformers.Trainer` steps with stochastic gradient surgery reach the same weights as
the kit's own loop (`fslib.engine.training.optimisation_step`) given the same batches and draws, with clipping active so
that surgery after the clipping would show; and the surgery statistics reach Trainer's logs."""

import pytest
import torch
from transformers import TrainingArguments, XLMRobertaConfig, XLMRobertaForTokenClassification, default_data_collator
from transformers.optimization import get_linear_schedule_with_warmup

pytest.importorskip("accelerate")

from fslib.engine.integrations import SurgeryTrainer  # noqa: E402
from fslib.engine.surgeons.stochastic import StochasticGradientSurgery  # noqa: E402
from fslib.engine.surgery import FlatGradients  # noqa: E402
from fslib.engine.training import StageSettings, optimisation_step, optimizer_for  # noqa: E402

MICRO_BATCH, GRAD_ACCUM, EXAMPLES, LENGTH = 2, 2, 12, 10  # 3 optimiser steps


def tiny_model():
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=40, num_labels=3,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return XLMRobertaForTokenClassification(config)


def examples(seed, n, length=LENGTH):
    generator = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(4, 50, (length,), generator=generator),
             "attention_mask": torch.ones(length, dtype=torch.long),
             "labels": torch.randint(0, 3, (length,), generator=generator)} for _ in range(n)]


def oracle_batches():
    return {lang: default_data_collator(examples(seed, 3)) for lang, seed in (("de", 100), ("fr", 101), ("en", 102))}


def trainer_weights(tmp_path, alpha, granularity, max_grad_norm):
    model = tiny_model()
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=MICRO_BATCH,
                             gradient_accumulation_steps=GRAD_ACCUM, num_train_epochs=1, learning_rate=1e-2,
                             lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, adam_epsilon=1e-8,
                             max_grad_norm=max_grad_norm, optim="adamw_torch", train_sampling_strategy="sequential",
                             logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0,
                             dataloader_pin_memory=False, disable_tqdm=True)
    trainer = SurgeryTrainer(model=model, args=args, train_dataset=examples(0, EXAMPLES),
                             data_collator=default_data_collator, oracle_batches=oracle_batches(),
                             surgery_alpha=alpha, surgery_seed=7, surgery_granularity=granularity)
    trainer.train()
    return model, trainer


def kit_weights(alpha, granularity, max_grad_norm):
    model = tiny_model()
    model.train()
    settings = StageSettings(epochs=1, batch_size=MICRO_BATCH * GRAD_ACCUM, learning_rate=1e-2,
                             grad_accum=GRAD_ACCUM, max_grad_norm=max_grad_norm, precision="fp32")
    steps = EXAMPLES // (MICRO_BATCH * GRAD_ACCUM)
    optimizer = optimizer_for(model, settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps)
    grads = FlatGradients(list(model.parameters()))
    oracles = oracle_batches()
    surgeon = StochasticGradientSurgery(grads, list(oracles), alpha, 7, lambda lang: model(**oracles[lang]).loss)
    data = examples(0, EXAMPLES)
    micro_batches = [{**default_data_collator(data[i:i + MICRO_BATCH]), "langs": ["xx"] * MICRO_BATCH}
                     for i in range(0, EXAMPLES, MICRO_BATCH)]
    for step in range(steps):
        optimisation_step(model, micro_batches[step * GRAD_ACCUM:(step + 1) * GRAD_ACCUM], grads=grads,
                          optimizer=optimizer, scheduler=scheduler, settings=settings, device=torch.device("cpu"),
                          surgeon=surgeon, surgery_granularity=granularity)
    return model, surgeon


def max_difference(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("granularity", ["step", "micro_batch"])
def test_trainer_matches_the_kit_loop(tmp_path, granularity):
    trained, trainer = trainer_weights(tmp_path, 1.0, granularity, max_grad_norm=0.5)
    reference, surgeon = kit_weights(1.0, granularity, max_grad_norm=0.5)
    assert max_difference(trained, reference) < 2e-6
    assert max_difference(trained, tiny_model()) > 1e-3  # it did train
    # without surgery the weights differ: the test can tell
    assert max_difference(trainer_weights(tmp_path, 0.0, granularity, 0.5)[0], reference) > 1e-4
    # the same draws: each language as many times in both
    drawn = sum(entry[f"surgery/oracle_{lang}"] for entry in trainer.surgery_log for lang in ("de", "fr", "en"))
    assert drawn == (3 if granularity == "step" else 6)


def test_surgery_statistics_reach_the_logs(tmp_path):
    _, trainer = trainer_weights(tmp_path, 0.5, "step", max_grad_norm=1.0)
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 3  # logging_steps=1
    assert all({"surgery/surgery_rate", "surgery/conflict_rate", "surgery/mean_cosine"} <= set(entry)
               for entry in logged)
    rates = [entry["surgery/surgery_rate"] for entry in logged]
    assert set(rates) <= {0.0, 1.0}  # one application per logging interval
    assert trainer.surgery_log == [{key: value for key, value in entry.items()
                                    if key.startswith("surgery/") or key == "step"} for entry in logged]


def test_surgery_after_the_clipping_would_give_other_weights(tmp_path):
    """The place matters: projecting after the clipping (where an on_pre_optimizer_step callback runs) gives other
    weights than SurgeryTrainer, which matches the kit (test above)."""
    model = tiny_model()
    optimizer = optimizer_for(model, StageSettings(epochs=1, batch_size=4, learning_rate=1e-2, precision="fp32"))
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, 3)
    grads = FlatGradients(list(model.parameters()))
    oracles = oracle_batches()
    surgeon = StochasticGradientSurgery(grads, list(oracles), 1.0, 7, lambda lang: model(**oracles[lang]).loss)
    data = examples(0, EXAMPLES)
    clipped_norms = []
    for step in range(3):
        for i in range(GRAD_ACCUM):
            start = (step * GRAD_ACCUM + i) * MICRO_BATCH
            (model(**default_data_collator(data[start:start + MICRO_BATCH])).loss / GRAD_ACCUM).backward()
        clipped_norms.append(torch.nn.utils.clip_grad_norm_(grads.parameters, 0.5).item())
        surgeon()  # too late
        optimizer.step()
        scheduler.step()
        grads.zero_()
    assert max(clipped_norms) > 0.5  # the clipping did act
    trained, _ = trainer_weights(tmp_path, 1.0, "step", max_grad_norm=0.5)
    assert max_difference(trained, model) > 1e-4


def test_bad_arguments_are_named(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match="surgery_granularity"):
        SurgeryTrainer(model=tiny_model(), args=args, oracle_batches={"de": {}}, surgery_granularity="epoch")
    with pytest.raises(ValueError, match="oracle_languages"):
        SurgeryTrainer(model=tiny_model(), args=args, oracle_batches=lambda lang: {})


@pytest.mark.cuda
def test_fp16_trainer_on_cuda_applies_surgery_under_loss_scaling(tmp_path):
    model = tiny_model()
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=MICRO_BATCH,
                             gradient_accumulation_steps=GRAD_ACCUM, num_train_epochs=2, learning_rate=1e-3,
                             fp16=True, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True)
    trainer = SurgeryTrainer(model=model, args=args, train_dataset=examples(0, EXAMPLES),
                             data_collator=default_data_collator, oracle_batches=oracle_batches(),
                             surgery_alpha=1.0, surgery_seed=7)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert trainer.accelerator.scaler is not None  # the loss really was scaled
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a.cpu(), b.cpu()) for a, b in zip(before, model.parameters()))
    logged = trainer.surgery_log
    # every step had one surgery: applied, or skipped with the step while the scale settles
    assert all(entry["surgery/surgery_rate"] + entry["surgery/skipped_surgeries"] == 1.0 for entry in logged)
