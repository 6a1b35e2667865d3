"""The oracle pass replayed from CUDA graphs: the padding it relies on changes nothing, it falls back to the eager
pass off CUDA, and on CUDA its gradients are those of the eager pass (bf16 and fp32), also after the weights moved
and for new batches of a captured shape."""

import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaForQuestionAnswering, XLMRobertaForTokenClassification

from fslib.engine.captured_oracle import CapturedOraclePass, capturable, oracle_pass
from fslib.engine.features import IGNORE
from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.engine.surgery import FlatGradients
from fslib.engine.training import autocast

PAD = 1


def tiny_model(cls=XLMRobertaForTokenClassification, dropout: float = 0.0):
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=80, pad_token_id=PAD, num_labels=5,
                              hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return cls(config).train()


def token_batch(seed: int, size: int = 3, length: int = 11) -> dict[str, torch.Tensor]:
    """Rows of different lengths, right-padded as the collator pads them; a label on some tokens."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (size, length), generator=generator)
    labels = torch.randint(0, 5, (size, length), generator=generator)
    labels[torch.rand(size, length, generator=generator) < 0.3] = IGNORE
    mask = torch.ones(size, length, dtype=torch.long)
    for row, used in enumerate(torch.randint(length // 2, length + 1, (size,), generator=generator).tolist()):
        ids[row, used:], mask[row, used:], labels[row, used:] = PAD, 0, IGNORE
    ids[:, 0], labels[:, 0] = 0, IGNORE
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def eager_gradient(model, grads, batch, device, precision="fp32") -> torch.Tensor:
    grads.zero_()
    with autocast(device, precision):
        loss = model(**{key: value.to(device) for key, value in batch.items()}).loss
    loss.backward()
    return grads.buffer.clone()


def test_padding_to_a_multiple_changes_neither_the_loss_nor_the_gradient():
    model = tiny_model()
    grads = FlatGradients(list(model.parameters()))
    captured = CapturedOraclePass(model, grads, "fp32", pad_multiple=8)
    batch = token_batch(0)
    padded = captured.padded(batch)
    assert padded["input_ids"].shape == (3, 16)
    assert (padded["input_ids"][:, 11:] == PAD).all() and (padded["attention_mask"][:, 11:] == 0).all()
    assert (padded["labels"][:, 11:] == IGNORE).all()
    assert torch.equal(padded["input_ids"][:, :11], batch["input_ids"])
    device = torch.device("cpu")
    torch.testing.assert_close(eager_gradient(model, grads, padded, device),
                               eager_gradient(model, grads, batch, device), rtol=1e-4, atol=1e-6)


def test_question_answering_batches_keep_their_shape():
    """The QA loss spans padded positions too, so padding would change it: QA batches are captured as they are."""
    model = tiny_model(XLMRobertaForQuestionAnswering)
    captured = CapturedOraclePass(model, FlatGradients(list(model.parameters())), "bf16")
    batch = {**{key: token_batch(0)[key] for key in ("input_ids", "attention_mask")},
             "start_positions": torch.tensor([1, 2, 3]), "end_positions": torch.tensor([2, 3, 4])}
    assert captured.padded(batch) is batch


def test_off_cuda_it_is_the_eager_pass_and_the_surgery_sees_the_same_gradients():
    device = torch.device("cpu")
    assert not capturable(device, "bf16") and not capturable(torch.device("cuda"), "fp16")
    with pytest.raises(ValueError, match="bf16 or fp32"):
        CapturedOraclePass(tiny_model(), FlatGradients(list(tiny_model().parameters())), "fp16")
    oracles = {"de": token_batch(1), "fr": token_batch(2, size=2, length=7)}
    results = []
    for use_pass in (False, True):
        model = tiny_model()
        grads = FlatGradients(list(model.parameters()))

        def oracle_loss(lang):
            return model(**oracles[lang]).loss
        if use_pass:
            pass_ = oracle_pass(model, grads, "fp32", lambda lang: {**oracles[lang], "langs": [lang]})
            surgeon = StochasticGradientSurgery(grads, list(oracles), 1.0, 0, oracle_pass=pass_)
        else:
            surgeon = StochasticGradientSurgery(grads, list(oracles), 1.0, 0, oracle_loss)
        for step in range(4):
            grads.zero_()
            model(**token_batch(10 + step)).loss.backward()
            surgeon()
            results.append(grads.buffer.clone())
        if use_pass:
            assert pass_.captured.stats()["eager_passes"] == 4 and "no CUDA" in pass_.captured.fallback_reason
    for eager, passed in zip(results[:4], results[4:]):
        torch.testing.assert_close(passed, eager, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="either oracle_loss or oracle_pass"):
        StochasticGradientSurgery(grads, ["de"], 1.0, 0)


@pytest.mark.cuda
@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-4), ("bf16", 2e-2)])
def test_captured_pass_gives_the_eager_gradients_on_cuda(precision, tolerance):
    device = torch.device("cuda")
    model = tiny_model().to(device)  # dropout 0: both passes are deterministic up to rounding
    grads = FlatGradients(list(model.parameters()))
    captured = CapturedOraclePass(model, grads, precision, pad_multiple=16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step, batch in enumerate([token_batch(1), token_batch(2), token_batch(3, size=2, length=30),
                                  token_batch(4), token_batch(5, length=13)]):
        expected = eager_gradient(model, grads, captured.padded(batch), device, precision)
        grads.buffer.fill_(7.0)  # the captured pass must overwrite, not add to, what the buffer holds
        captured(batch)
        got = grads.buffer.clone()
        relative = (got - expected).norm() / expected.norm()
        assert relative < tolerance, f"step {step}: relative difference {relative:.2e}"
        optimizer.step()  # the weights move in place; the graphs must see the new ones
    stats = captured.stats()
    assert stats["fallback_reason"] is None
    assert stats["graphs"] == 2 and stats["replays"] == 5  # (3, 16) for four batches, (2, 32) for one


@pytest.mark.cuda
def test_captured_pass_keeps_dropout_random_on_cuda():
    device = torch.device("cuda")
    model = tiny_model(dropout=0.3).to(device)
    grads = FlatGradients(list(model.parameters()))
    captured = CapturedOraclePass(model, grads, "bf16")
    batch = token_batch(1)
    captured(batch)
    first = grads.buffer.clone()
    captured(batch)
    assert captured.replays == 2 and not torch.equal(first, grads.buffer)


@pytest.mark.cuda
@pytest.mark.parametrize("task", ["ner", "tydiqa"])
def test_gradient_co_training_on_cuda_replays_its_oracle_passes(mini_dir, tiny_model, tmp_path, task, monkeypatch):
    """A whole gradient-co-train run on CUDA takes the captured path and writes its rows. It needs the training
    step's autograd graph released before the oracle pass is captured (optimisation_step's `del loss`);
    TyDiQA's batches are captured unpadded."""
    import fslib.engine.stages
    from fslib.core.languages import MINI_LANGS
    from fslib.engine.runner import run_experiment
    from fslib.store.config import RunConfig

    made = []

    def spy(*args, **kwargs):  # records the passes the run builds, which then run as usual
        made.append(oracle_pass(*args, **kwargs))
        return made[-1]
    monkeypatch.setattr(fslib.engine.stages, "oracle_pass", spy)
    config = RunConfig(task=task, method="gradient-co-train", k=5, seed=1, model=str(tiny_model),
                       data_dir=str(mini_dir), languages=list(MINI_LANGS), output_dir=str(tmp_path), epochs=1,
                       learning_rate=1e-3, max_train_examples=100, max_eval_examples=20, progress=False,
                       alpha=1.0, device="cuda")
    frame = run_experiment(config)
    assert len(frame) and frame["value"].notna().all()
    stats = made[0].captured.stats()
    assert stats["fallback_reason"] is None and stats["graphs"] >= 1 and stats["replays"] >= 1, stats
