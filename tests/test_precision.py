"""fp16 with a gradient scaler: the surgery under loss scaling (the maths with fake scales on the CPU, where
torch's GradScaler also runs), skipped steps not counted as surgeries, the `precision` setting, and on a GPU a
real fp16 step."""

import json

import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification
from transformers.optimization import get_linear_schedule_with_warmup

from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.engine.surgery import FlatGradients
from fslib.engine.training import StageSettings, autocast, gradient_scaler, optimisation_step, optimizer_for
from fslib.store.config import RunConfig


def tiny_model(dtype=torch.float64):
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=40, num_labels=3,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return XLMRobertaForTokenClassification(config).to(dtype)


def batch(seed, size=4, length=12, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(4, 50, (size, length), generator=generator).to(device),
            "labels": torch.randint(0, 3, (size, length), generator=generator).to(device)}


ORACLES = {"de": batch(100), "fr": batch(101), "en": batch(102)}


def surgery_gradient(train_scale: float, oracle_scale: float) -> tuple[torch.Tensor, dict]:
    """The gradient after one surgery when the training loss is multiplied by `train_scale` and the oracle loss
    by `oracle_scale` (a fake loss scaler), divided back by `train_scale`."""
    model = tiny_model()
    grads = FlatGradients(list(model.parameters()))
    surgeon = StochasticGradientSurgery(grads, list(ORACLES), 1.0, 3, lambda lang: model(**ORACLES[lang]).loss,
                                        backward=lambda loss: (loss * oracle_scale).backward())
    (model(**batch(0)).loss * train_scale).backward()
    surgeon()
    return grads.buffer / train_scale, surgeon.stats()


def test_projection_is_unchanged_by_loss_scaling():
    plain, plain_stats = surgery_gradient(1.0, 1.0)
    assert plain_stats["surgery_rate"] == 1.0
    for train_scale, oracle_scale in [(2.0 ** 16, 2.0 ** 16), (1024.0, 1.0), (1.0, 2.0 ** 20)]:
        scaled, stats = surgery_gradient(train_scale, oracle_scale)
        torch.testing.assert_close(scaled, plain, rtol=1e-12, atol=1e-15)
        assert stats["mean_cosine"] == pytest.approx(plain_stats["mean_cosine"], rel=1e-10)


def three_surgeries(overflow_at: int | None, reset_each: bool = False) -> tuple[StochasticGradientSurgery, list]:
    model = tiny_model()
    grads = FlatGradients(list(model.parameters()))
    surgeon = StochasticGradientSurgery(grads, list(ORACLES), 1.0, 3, lambda lang: model(**ORACLES[lang]).loss)
    per_step = []
    for step in range(3):
        grads.zero_()
        model(**batch(0)).loss.backward()
        if step == overflow_at:  # what an fp16 overflow leaves in a scaled gradient
            grads.buffer[7] = float("inf")
        surgeon()
        if reset_each:
            per_step.append(surgeon.stats())
            surgeon.reset_stats()
    return surgeon, per_step


def test_surgery_on_infinite_gradients_is_not_counted():
    surgeon, _ = three_surgeries(overflow_at=1)
    _, finite = three_surgeries(overflow_at=None, reset_each=True)  # the same draws, step by step
    stats = surgeon.stats()
    assert surgeon.surgeries == 3  # oracle gradients computed
    assert stats["skipped_surgeries"] == 1.0
    assert stats["surgery_rate"] == pytest.approx(2 / 3)  # the step the scaler skips is no surgery
    # conflicts and cosines over steps 0 and 2 only
    assert stats["conflict_rate"] == pytest.approx((finite[0]["conflict_rate"] + finite[2]["conflict_rate"]) / 2)
    assert stats["mean_cosine"] == pytest.approx((finite[0]["mean_cosine"] + finite[2]["mean_cosine"]) / 2)


def kit_steps(scaler, steps=3, init=None):
    """A few steps of the kit's `optimisation_step` with surgery (fp32 model on the CPU), optionally scaled."""
    model = tiny_model(torch.float32)
    if init is not None:
        model.load_state_dict(init)
    settings = StageSettings(epochs=1, batch_size=4, learning_rate=1e-2, max_grad_norm=0.5, precision="fp32")
    optimizer = optimizer_for(model, settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps)
    grads = FlatGradients(list(model.parameters()))
    backward = (lambda loss: scaler.scale(loss).backward()) if scaler else None
    surgeon = StochasticGradientSurgery(grads, list(ORACLES), 1.0, 3, lambda lang: model(**ORACLES[lang]).loss,
                                        backward=backward)
    for step in range(steps):
        group = [{**batch(10 * step + i, size=2), "langs": ["xx", "xx"]} for i in range(2)]
        optimisation_step(model, group, grads=grads, optimizer=optimizer, scheduler=scheduler, settings=settings,
                          device=torch.device("cpu"), surgeon=surgeon, scaler=scaler)
    return model, surgeon


def test_scaled_steps_reach_the_unscaled_weights():
    plain, _ = kit_steps(None)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    scaled, surgeon = kit_steps(scaler)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert surgeon.stats()["skipped_surgeries"] == 0.0


def test_overflowing_step_is_skipped_and_not_a_surgery():
    # a scale near float32's limit makes the scaled gradients overflow: the scaler skips the step and halves it
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 127, growth_interval=1000)
    init = tiny_model(torch.float32).state_dict()
    model, surgeon = kit_steps(scaler, steps=1, init=init)
    assert all(torch.equal(p, init[name]) for name, p in model.state_dict().items())  # not stepped
    assert scaler.get_scale() == 2.0 ** 126
    stats = surgeon.stats()
    assert surgeon.surgeries == 1 and stats["skipped_surgeries"] == 1.0 and stats["surgery_rate"] == 0.0


def test_precision_setting():
    assert not gradient_scaler(torch.device("cpu"), "fp16").is_enabled()  # autocast only on CUDA
    with pytest.raises(ValueError, match="precision must be one of bf16, fp16, fp32, not 'fp8'"):
        autocast(torch.device("cpu"), "fp8")
    config = RunConfig(task="ner", method="ord-FS", k=1, seed=1, model="m", precision="half")
    with pytest.raises(ValueError, match="precision must be one of 'bf16', 'fp16', 'fp32', not 'half'"):
        config.resolved()


def test_configs_saved_with_bf16_still_load_and_keep_their_hash(tmp_path):
    for legacy, precision in ((True, "bf16"), (False, "fp32")):
        values = RunConfig(task="ner", method="ord-FS", k=1, seed=1, model="m").to_dict()
        del values["precision"]
        values["bf16"] = legacy
        (tmp_path / "config.json").write_text(json.dumps(values))
        loaded = RunConfig.load(tmp_path / "config.json")
        assert loaded.precision == precision
    bf16 = RunConfig(task="ner", method="ord-FS", k=1, seed=1, model="m")
    assert bf16.config_hash == "d9dae5a0e4bb"  # the hash this run had when the field was `bf16: true`
    assert len({RunConfig(task="ner", method="ord-FS", k=1, seed=1, model="m", precision=p).config_hash
                for p in ("bf16", "fp16", "fp32")}) == 3


@pytest.mark.cuda
def test_fp16_training_on_cuda_scales_and_keeps_fp32_weights():
    device = torch.device("cuda")
    model = tiny_model(torch.float32).to(device).train()
    settings = StageSettings(epochs=1, batch_size=4, learning_rate=1e-3, precision="fp16")
    optimizer = optimizer_for(model, settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, 10)
    grads = FlatGradients(list(model.parameters()))
    scaler = gradient_scaler(device, "fp16")
    oracles = {lang: batch(100 + i, device=device) for i, lang in enumerate(["de", "fr"])}

    def oracle_loss(lang):
        with autocast(device, "fp16"):
            return model(**oracles[lang]).loss

    surgeon = StochasticGradientSurgery(grads, list(oracles), 1.0, 0, oracle_loss,
                                        backward=lambda loss: scaler.scale(loss).backward())
    with autocast(device, "fp16"):
        assert model(**batch(0, device=device)).logits.dtype == torch.float16
    before = [p.detach().clone() for p in model.parameters()]
    for step in range(3):
        optimisation_step(model, [{**batch(step, device=device), "langs": ["xx"] * 4}], grads=grads,
                          optimizer=optimizer, scheduler=scheduler, settings=settings, device=device,
                          surgeon=surgeon, scaler=scaler)
    assert scaler.is_enabled() and scaler.get_scale() > 1.0
    assert grads.buffer.dtype == torch.float32 and all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert surgeon.stats()["skipped_surgeries"] + surgeon.stats()["surgery_rate"] * 3 == pytest.approx(3)
