"""Stochastic gradient surgery: the projection on hand-computed vectors, the coin, and the efficient flat-buffer
implementation against a plain reference, step by step on a tiny model."""

import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.engine.surgery import FlatGradients, gradient_products, project_conflicting
from fslib.engine.surgery_reference import ReferenceSurgery


def test_not_conflicting_is_left_alone():
    g, g_ref = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    assert torch.equal(project_conflicting(g, g_ref), g)  # dot = 1
    orthogonal = torch.tensor([0.0, 0.0, 3.0])
    assert torch.equal(project_conflicting(orthogonal, g_ref), orthogonal)  # dot = 0


def test_conflicting_is_projected_by_hand():
    # g . g_ref = -2, |g_ref|^2 = 1: g - (-2) * g_ref = [1, 0]
    assert torch.equal(project_conflicting(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 1.0])),
                       torch.tensor([1.0, 0.0]))
    # g . g_ref = -6, |g_ref|^2 = 8: g - (-6 / 8) * g_ref = [1.5, -1.5], and [1.5, -1.5] . [2, 2] = 0
    assert torch.equal(project_conflicting(torch.tensor([0.0, -3.0]), torch.tensor([2.0, 2.0])),
                       torch.tensor([1.5, -1.5]))


def test_projection_is_orthogonal_to_the_oracle_and_matches_the_formula():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        g, g_ref = torch.randn(1000, generator=generator, dtype=torch.float64), \
            torch.randn(1000, generator=generator, dtype=torch.float64)
        if torch.dot(g, g_ref) > 0:
            g_ref = -g_ref
        projected = project_conflicting(g, g_ref)
        assert torch.dot(projected, g_ref).abs() < 1e-9 * g.norm() * g_ref.norm()
        assert torch.allclose(projected, g - torch.dot(g, g_ref) / torch.dot(g_ref, g_ref) * g_ref)


class Linear(torch.nn.Module):
    """f(w) = w . x for the training batch; the oracle loss points the other way: always conflicting."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))


def surgery_on_linear(alpha):
    model = Linear()
    grads = FlatGradients(list(model.parameters()))
    calls = []

    def oracle_loss(lang):
        calls.append(lang)
        return -(model.w * torch.tensor([1.0, 0.0])).sum()  # gradient [-1, 0]

    surgeon = StochasticGradientSurgery(grads, ["de", "fr"], alpha=alpha, seed=0, oracle_loss=oracle_loss)
    return model, grads, surgeon, calls


def test_alpha_zero_never_projects_and_skips_the_oracle():
    model, grads, surgeon, calls = surgery_on_linear(alpha=0.0)
    for _ in range(50):
        grads.zero_()
        (model.w * torch.tensor([1.0, 1.0])).sum().backward()  # gradient [1, 1]
        surgeon()
        assert torch.equal(model.w.grad, torch.tensor([1.0, 1.0]))
    assert calls == [] and surgeon.stats()["surgery_rate"] == 0.0


def test_alpha_one_always_projects_a_conflict():
    model, grads, surgeon, calls = surgery_on_linear(alpha=1.0)
    for _ in range(50):
        grads.zero_()
        (model.w * torch.tensor([1.0, 1.0])).sum().backward()
        surgeon()
        # [1, 1] . [-1, 0] = -1 < 0: [1, 1] - (-1 / 1) * [-1, 0] = [0, 1]
        assert torch.equal(model.w.grad, torch.tensor([0.0, 1.0]))
    stats = surgeon.stats()
    assert len(calls) == 50 and set(calls) == {"de", "fr"}  # the oracle language is drawn uniformly
    assert stats["surgery_rate"] == 1.0 and stats["conflict_rate"] == 1.0
    assert stats["mean_cosine"] == pytest.approx(-1 / 2 ** 0.5)
    assert stats["oracle_de"] + stats["oracle_fr"] == 50


def test_intermediate_alpha_is_a_seeded_coin():
    rates = []
    for _ in range(2):
        model, grads, surgeon, calls = surgery_on_linear(alpha=0.3)
        for _ in range(400):
            grads.zero_()
            (model.w * torch.tensor([1.0, 1.0])).sum().backward()
            surgeon()
        rates.append((surgeon.stats()["surgery_rate"], list(calls)))
    assert rates[0] == rates[1]  # same seed, same draws
    assert 0.22 < rates[0][0] < 0.38


def tiny_xlmr():
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=40, num_labels=3,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return XLMRobertaForTokenClassification(config)


def batch(seed, size=4, length=12, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(4, 50, (size, length), generator=generator).to(device),
            "labels": torch.randint(0, 3, (size, length), generator=generator).to(device)}


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("fused", [False, True], ids=["reductions", "fused"])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_efficient_surgery_matches_the_plain_reference_step_by_step(alpha, fused, device):
    # float64: no rounding drift over steps
    efficient, reference = tiny_xlmr().double().to(device), tiny_xlmr().double().to(device)
    reference.load_state_dict(efficient.state_dict())
    oracles = {"de": batch(100, device=device), "fr": batch(101, device=device), "en": batch(102, device=device)}

    grads = FlatGradients(list(efficient.parameters()))
    surgeon = StochasticGradientSurgery(grads, list(oracles), alpha, seed=7,
                                        oracle_loss=lambda lang: efficient(**oracles[lang]).loss)
    surgeon.fused = fused  # the sums as one matrix product of both buffers (the CUDA default) or three reductions
    plain = ReferenceSurgery(reference, list(oracles), alpha, seed=7,
                             oracle_loss=lambda model, lang: model(**oracles[lang]).loss)
    # plain SGD: Adam would blow rounding noise in gradients that are zero in theory (attention key biases) up
    # to visible differences, which says nothing about the surgery
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (efficient, reference)]
    for step in range(16):
        grads.zero_()
        reference.zero_grad(set_to_none=True)
        efficient(**batch(step, device=device)).loss.backward()
        reference(**batch(step, device=device)).loss.backward()
        surgeon()
        plain()
        assert torch.allclose(grads.buffer, ReferenceSurgery.flat(reference), atol=1e-12, rtol=1e-9)
        for optimizer in optimizers:
            optimizer.step()
        for (name, a), b in zip(efficient.named_parameters(), reference.parameters()):
            assert torch.allclose(a, b, atol=1e-12, rtol=1e-9), f"{name} differs after step {step}"
    assert plain.projections > 0  # the comparison exercised real projections


def test_flat_gradients_survive_backward_and_detect_replacement():
    model = tiny_xlmr()
    grads = FlatGradients(list(model.parameters()))
    model(**batch(0)).loss.backward()
    grads.check_attached()
    assert grads.buffer.abs().sum() > 0  # autograd accumulated into the views
    assert torch.equal(grads.buffer, torch.cat([p.grad.flatten() for p in grads.parameters]))
    model.zero_grad(set_to_none=True)
    with pytest.raises(RuntimeError, match="flat gradient buffer"):
        grads.check_attached()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_fused_products_agree_with_the_reductions_within_fp32_rounding(device):
    """g.o, |g| and |o|^2 from one matrix product of the (2, N) rows and from three reductions, fp32, against
    the float64 truth: both within fp32 rounding of it (and so of each other), and so are their projections."""
    model = torch.nn.Linear(1024, 1023).to(device)  # 1,048,575 gradient entries: not a power of two
    grads = FlatGradients(list(model.parameters()))
    grads.add_oracle_buffer()
    generator = torch.Generator().manual_seed(3)
    g = torch.randn(grads.buffer.shape, generator=generator)
    grads.rows.copy_(torch.stack([g, 0.3 * g + torch.randn(g.shape, generator=generator)]))  # cosine about 0.29
    rows = grads.rows.double().cpu()
    truth = rows @ rows.t()
    exact = (truth[0, 1], truth[0, 0].sqrt(), truth[1, 1])
    # fp32 summation of N terms: an error of order sqrt(N) eps (here 6e-5) of the sum of the terms' magnitudes
    magnitudes = ((rows[0] * rows[1]).abs().sum(), truth[0, 0].sqrt(), truth[1, 1])
    results = []
    for fused in (False, True):
        products = gradient_products(grads, fused)
        for value, expected, magnitude in zip(products, exact, magnitudes):
            assert abs(value.item() - expected.item()) <= 1e-4 * magnitude.item(), (fused, value, expected)
        results.append(project_conflicting(grads.buffer, -grads.oracle, dot=-products[0], ref_norm2=products[2]))
    scale = results[0].abs().max().item()
    assert torch.allclose(results[0], results[1], rtol=0, atol=1e-4 * scale)
    assert not torch.equal(results[0], grads.buffer)  # the projection happened (g.-o < 0)


def test_the_oracle_pass_fills_the_second_buffer_and_leaves_the_training_gradient_in_place():
    """No copy: the oracle backward goes to `grads.oracle` while the training gradient stays, bit for bit, in
    the model's buffer, which `.grad` points at again afterwards. A model without a surgeon has one buffer."""
    model = tiny_xlmr()
    grads = FlatGradients(list(model.parameters()))
    assert grads.rows.shape[0] == 1 and grads.oracle is None
    model(**batch(0)).loss.backward()
    training = grads.buffer.clone()
    surgeon = StochasticGradientSurgery(grads, ["de"], 1.0, seed=0, oracle_loss=lambda lang: model(**batch(1)).loss)
    assert grads.rows.shape[0] == 2 and torch.equal(grads.buffer, training)  # the second row kept the first
    where = grads.buffer.data_ptr()
    train, oracle = surgeon.oracle_gradient("de")
    assert train.data_ptr() == where and torch.equal(train, training)
    expected = tiny_xlmr()
    expected(**batch(1)).loss.backward()
    assert torch.allclose(oracle, torch.cat([p.grad.flatten() for p in expected.parameters()]))
    grads.check_attached()
    assert all(grads.buffer.data_ptr() <= p.grad.data_ptr() < grads.oracle.data_ptr() for p in grads.parameters)
    model(**batch(2)).loss.backward()  # the next backward accumulates into the training gradient again
    assert not torch.equal(grads.buffer, training) and torch.equal(grads.oracle, oracle)
