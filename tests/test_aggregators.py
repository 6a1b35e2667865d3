"""The surgeons beyond the paper's (fslib/engine/surgeons): each checked against an independent implementation on
the same random gradients (TorchJD's PCGrad and GradVac, written apart from the kit's: they work on the Gram
matrix, the kit on the gradients), and by its defining property computed by hand (GradVac brings a cosine below
target to the target; the per-layer projection leaves each conflicting tensor orthogonal to the oracle's; PCGrad
of two languages leaves no conflict; UPGrad's step conflicts with no language); the per-language gradients add up
to the batch's gradient; `surgeon_args` are validated and hashed only when not default; cost prices the
per-language passes; and GradVac's moving averages go through a checkpoint: a resumed run writes the same bytes."""

import pytest
import torch
from torchjd.aggregation import PCGrad
from torchjd.aggregation._gradvac import GradVacWeighting

from fslib.batch.cost import DataSizes, run_cost
from fslib.core.languages import MINI_LANGS
from fslib.engine.runner import run_dir, run_experiment
from fslib.engine.stages import Experiment
from fslib.engine.surgeons.gradvac import GradVac
from fslib.engine.surgeons.languages import LanguageGradientSurgeon
from fslib.engine.surgeons.pcgrad_languages import LanguagePCGrad
from fslib.engine.surgeons.per_layer import PerLayerSurgery
from fslib.engine.surgeons.upgrad import LanguageUPGrad
from fslib.engine.surgery import FlatGradients
from fslib.store.config import RunConfig

RTOL = 1e-6


def planted(shapes: list[int], oracles: list[torch.Tensor], surgeon_class, **options):
    """A surgeon over parameters of `shapes` whose oracle pass writes the next of `oracles` into the buffer the
    gradients point at (the surgeon's oracle buffer); alpha 1, float64 so that agreement is judged at 1e-6."""
    parameters = [torch.nn.Parameter(torch.zeros(n, dtype=torch.float64)) for n in shapes]
    grads = FlatGradients(parameters)
    queue = list(oracles)

    def oracle_pass(lang):
        grads.attached.copy_(queue.pop(0))

    return grads, surgeon_class(grads, ["de"], 1.0, 0, oracle_pass=oracle_pass, **options)


def cosine(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


# ---- per-layer stochastic surgery -------------------------------------------------------------------------------
def test_per_layer_surgery_makes_each_conflicting_tensor_orthogonal_and_leaves_the_others():
    generator = torch.Generator().manual_seed(0)
    shapes = [5, 7, 3, 6]
    g = torch.randn(sum(shapes), generator=generator, dtype=torch.float64)
    o = torch.randn(sum(shapes), generator=generator, dtype=torch.float64)
    grads, surgeon = planted(shapes, [o], PerLayerSurgery)
    grads.buffer.copy_(g)
    surgeon()
    out = grads.buffer
    conflicting = 0
    for start, n in zip([0, 5, 12, 15], shapes):
        piece = slice(start, start + n)
        if torch.dot(g[piece], o[piece]) < 0:
            conflicting += 1
            assert abs(float(torch.dot(out[piece], o[piece]))) < 1e-12  # orthogonal to the tensor's oracle
            expected = g[piece] - torch.dot(g[piece], o[piece]) / torch.dot(o[piece], o[piece]) * o[piece]
            torch.testing.assert_close(out[piece], expected, rtol=RTOL, atol=0)
        else:
            assert torch.equal(out[piece], g[piece])
    assert 0 < conflicting < len(shapes)  # the draw has both kinds
    assert surgeon.stats()["layer_conflict_rate"] == conflicting / len(shapes)


# ---- GradVac ----------------------------------------------------------------------------------------------------
def pairs(steps: int, n: int, seed: int):
    """(training, oracle) gradients whose cosines wander between about -0.6 and 0.9."""
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        g = torch.randn(n, generator=generator, dtype=torch.float64)
        noise = torch.randn(n, generator=generator, dtype=torch.float64)
        a = [1.5, -0.5, 0.2, 0.8, -0.1][step % 5]
        yield g, a * g + noise


def test_gradvac_agrees_with_torchjd_layer_by_layer_over_a_run_of_steps():
    """TorchJD's GradVac on the pair (g, o) of one tensor adds w o to g and w' g to o: its weight of o is 1 + w,
    the kit's coefficient; one TorchJD weighting per tensor stands for the kit's per-tensor targets."""
    shapes, beta, steps = [6, 4, 9], 0.3, 12
    generated = list(zip(*(list(pairs(steps, n, seed)) for seed, n in enumerate(shapes))))
    oracles = [torch.cat([o for _, o in step]) for step in generated]
    grads, surgeon = planted(shapes, oracles, GradVac, beta=beta)
    references = [GradVacWeighting(beta=beta, eps=0.0) for _ in shapes]
    adjusted_below = 0
    for step in generated:
        grads.buffer.copy_(torch.cat([g for g, _ in step]))
        surgeon()
        out = torch.split(grads.buffer, shapes)
        for (g, o), reference, kit in zip(step, references, out):
            rows = torch.stack([g, o])
            w = reference(rows @ rows.T)[1] - 1.0
            torch.testing.assert_close(kit, g + w * o, rtol=RTOL, atol=1e-12)
            adjusted_below += bool(w != 0)
    assert adjusted_below > steps  # the comparison saw adjustments, not only untouched gradients
    for k, reference in enumerate(references):
        assert float(surgeon.targets[0, k]) == pytest.approx(float(reference._phi_t[0, 1]), rel=RTOL)


def test_gradvac_moves_a_cosine_below_target_to_the_target_also_when_it_is_positive():
    generator = torch.Generator().manual_seed(3)
    g = torch.randn(50, generator=generator, dtype=torch.float64)
    o = 0.3 * g + torch.randn(50, generator=generator, dtype=torch.float64)
    grads, surgeon = planted([50], [o, o], GradVac, beta=0.5)
    assert 0 < cosine(g, o) < 0.5
    surgeon.targets.fill_(0.6)  # above the cosine: a positive cosine is raised too
    grads.buffer.copy_(g)
    surgeon()
    assert cosine(grads.buffer, o) == pytest.approx(0.6, rel=1e-9)
    assert float(surgeon.targets[0, 0]) == pytest.approx(0.5 * 0.6 + 0.5 * cosine(g, o), rel=1e-9)  # phi before
    surgeon.targets.fill_(-0.2)  # below the cosine: nothing to do
    grads.buffer.copy_(g)
    surgeon()
    assert torch.equal(grads.buffer, g)


def test_gradvac_args_are_validated_and_hashed_only_when_not_default():
    base = dict(task="ner", method="gradient-co-train", k=1, seed=1, model="m", languages=["en", "de"])
    default = RunConfig(**base, surgeon="gradvac").config_hash
    assert RunConfig(**base, surgeon="gradvac", surgeon_args={"beta": 0.01}).config_hash == default
    assert RunConfig(**base, surgeon="gradvac", surgeon_args={"beta": 0.1}).config_hash != default
    assert RunConfig(**base).config_hash == RunConfig(**base, surgeon_args={}).config_hash
    with pytest.raises(ValueError, match="surgeon 'gradvac' has no parameter 'gamma'; valid: beta"):
        RunConfig(**base, surgeon="gradvac", surgeon_args={"gamma": 1}).resolved()
    with pytest.raises(ValueError, match=r"surgeon_args.beta of surgeon 'gradvac' must be a number in \[0.0, 1.0\]"):
        RunConfig(**base, surgeon="gradvac", surgeon_args={"beta": 2}).resolved()
    with pytest.raises(ValueError, match="surgeon 'pcgrad_languages' has no parameter 'beta'; valid: none"):
        RunConfig(**base, surgeon="pcgrad_languages", surgeon_args={"beta": 0.1}).resolved()
    with pytest.raises(ValueError, match="surgery_granularity must be 'step', not 'micro_batch'"):
        RunConfig(**base, surgeon="upgrad", surgery_granularity="micro_batch").resolved()


# ---- PCGrad and UPGrad over languages ------------------------------------------------------------------------
def language_surgeon(surgeon_class, **options):
    grads = FlatGradients([torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))])
    return surgeon_class(grads, ["de"], 1.0, 7, oracle_loss=lambda lang: None, batch_loss=lambda batch: None,
                         **options)


@pytest.mark.parametrize("languages", [2, 3, 5])
def test_pcgrad_over_languages_agrees_with_torchjds_pcgrad_given_the_same_orders(languages, monkeypatch):
    surgeon = language_surgeon(LanguagePCGrad)
    orders, kit_permutation = [], surgeon.permutation
    surgeon.permutation = lambda m: orders.append(kit_permutation(m)) or orders[-1]
    generator = torch.Generator().manual_seed(languages)
    for _ in range(20):
        rows = torch.randn(languages, 40, generator=generator, dtype=torch.float64)
        rows[1:] -= 0.5 * rows[0]  # conflicts with the first row, English's place
        orders.clear()
        kit = surgeon.aggregate(rows)
        replay = iter(list(orders))
        with monkeypatch.context() as patch:  # TorchJD draws torch.randperm(m) once per row, as the kit does
            patch.setattr(torch, "randperm", lambda m, **kwargs: torch.tensor(next(replay)))
            reference = PCGrad()(rows)
        torch.testing.assert_close(kit, reference, rtol=RTOL, atol=1e-12)


def test_pcgrad_of_two_languages_leaves_no_conflict():
    surgeon = language_surgeon(LanguagePCGrad)
    g1, g2 = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64)
    out = surgeon.aggregate(torch.stack([g1, g2]))
    # by hand: g1 - (-1/2) g2 = (0.5, 0.5, 1); g2 - (-1/2) g1 = (-0.5, 1, 0.5); summed: (0, 1.5, 1.5)
    torch.testing.assert_close(out, torch.tensor([0.0, 1.5, 1.5], dtype=torch.float64))
    assert float(out @ g1) >= 0 and float(out @ g2) >= 0


def test_upgrads_step_conflicts_with_no_language_and_is_the_sum_without_conflicts():
    surgeon = language_surgeon(LanguageUPGrad)
    generator = torch.Generator().manual_seed(5)
    for _ in range(10):
        rows = torch.randn(4, 30, generator=generator, dtype=torch.float64)
        out = surgeon.aggregate(rows)
        assert (rows @ out >= -1e-9 * out.norm() * rows.norm(dim=1)).all()
    agreeing = torch.rand(3, 30, generator=generator, dtype=torch.float64)  # positive entries: no conflict
    torch.testing.assert_close(surgeon.aggregate(agreeing), agreeing.sum(0), rtol=1e-6, atol=1e-9)


def test_upgrad_of_two_languages_is_pcgrad():
    """With two gradients the dual-cone projection of each is its PCGrad projection: the two surgeons agree on
    every step holding English and one target (what the mini grid shows), up to the regularisation of TorchJD's
    quadratic program (its default reg_eps: differences of a few 1e-3 relative)."""
    upgrad, pcgrad = language_surgeon(LanguageUPGrad), language_surgeon(LanguagePCGrad)
    generator = torch.Generator().manual_seed(11)
    for _ in range(10):
        rows = torch.randn(2, 30, generator=generator, dtype=torch.float64)
        rows[1] -= 0.8 * rows[0]
        torch.testing.assert_close(upgrad.aggregate(rows), pcgrad.aggregate(rows), rtol=1e-2, atol=1e-3)
        assert not torch.allclose(upgrad.aggregate(rows), rows.sum(0), rtol=1e-2)  # they did project


class MeanSquares(torch.nn.Module):
    """A model whose loss is the mean over the batch's examples (as classification's and QA's are)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1, dtype=torch.float64)

    def forward(self, x, y):
        return type("Output", (), {"loss": ((self.linear(x).squeeze(-1) - y) ** 2).mean()})()


def test_language_gradients_add_up_to_the_steps_gradient():
    torch.manual_seed(0)
    model = MeanSquares()
    grads = FlatGradients(list(model.parameters()))
    surgeon = LanguageGradientSurgeon(grads, ["de", "fr"], 1.0, 0, oracle_loss=lambda lang: None,
                                      batch_loss=lambda batch: model(batch["x"], batch["y"]).loss)
    group = [{"x": torch.randn(n, 4, dtype=torch.float64), "y": torch.randn(n, dtype=torch.float64),
              "langs": langs} for n, langs in ((5, ["en", "de", "en", "fr", "en"]), (3, ["en", "en", "de"]))]
    surgeon.observe(group)
    for batch in group:  # the training loop's backward: loss / grad_accum per micro-batch
        (model(batch["x"], batch["y"]).loss / len(group)).backward()
    step_gradient = grads.buffer.clone()
    rows = surgeon.language_gradients(["en", "de", "fr"])
    torch.testing.assert_close(rows.sum(0), step_gradient, rtol=RTOL, atol=1e-12)
    assert surgeon.language_passes == 5  # en and de in both micro-batches, fr in one


def test_cost_prices_the_per_language_passes(tmp_path):
    data = tmp_path / "panx"
    data.mkdir()
    for name, n in {"train-en": 7, "dev-en": 2, "test-en": 2, "train-de": 6, "dev-de": 2, "test-de": 2}.items():
        (data / f"{name}.tsv").write_text("\n\n".join(["Paris\tB-LOC"] * n) + "\n")
    values = dict(task="ner", method="gradient-co-train", k=1, seed=1, model="m", languages=["en", "de"],
                  data_dir=str(tmp_path), train_batch_size=4, epochs=1, alpha=1.0)
    # 7 English + 1 shot = 8 examples, 2 steps of 4; P(de in a batch) = 1 - C(7,4)/C(8,4) = 1/2, English always
    # there: E[L 1{L >= 2}] = 2 x 1/2 = 1 pass a step
    cost = run_cost(RunConfig(**values, surgeon="pcgrad_languages"), DataSizes())
    assert cost.passes["per-language passes"] == pytest.approx(2 * 1.0)
    assert cost.passes["oracle passes"] == 0
    assert run_cost(RunConfig(**values, surgeon="gradvac"), DataSizes()).passes["per-language passes"] == 0
    assert LanguageGradientSurgeon.batch_passes(0.5, [1.0, 0.5, 0.5]) == pytest.approx(0.5 * (2 - 0.25))


# ---- end to end: the surgeons run, and GradVac's state survives a resume ---------------------------------------
SMALL = dict(epochs=2, learning_rate=3e-3, max_train_examples=240, max_eval_examples=40, progress=False,
             eval_batch_size=128, train_batch_size=16, target_dev_curves=False)


def mini_config(mini_dir, tiny_model, output_dir, surgeon) -> RunConfig:
    return RunConfig(task="ner", method="gradient-co-train", k=5, seed=1, model=str(tiny_model),
                     data_dir=str(mini_dir), languages=list(MINI_LANGS), output_dir=str(output_dir),
                     surgeon=surgeon, **SMALL)


class Interrupted(Exception):
    pass


def test_interrupted_gradvac_run_resumes_to_the_same_bytes(mini_dir, tiny_model, tmp_path, monkeypatch):
    whole = mini_config(mini_dir, tiny_model, tmp_path / "whole", "gradvac")
    run_experiment(whole)

    def interrupt_in_second_epoch(self, entry):
        if entry["kind"] == "epoch" and entry["epoch"] == 2:
            raise Interrupted

    resumed = mini_config(mini_dir, tiny_model, tmp_path / "resumed", "gradvac")
    with monkeypatch.context() as patch:
        patch.setattr(Experiment, "on_log", interrupt_in_second_epoch)
        with pytest.raises(Interrupted):
            run_experiment(resumed)
    state = torch.load(run_dir(resumed) / "checkpoint" / "state.pt", weights_only=True)
    assert state["rng"]["surgery"]["targets"].abs().sum() > 0  # the moving averages are in the checkpoint
    torch.manual_seed(12345)
    run_experiment(resumed)
    for name in ("results.csv", "surgery.csv", "training.csv"):
        assert (run_dir(resumed) / name).read_bytes() == (run_dir(whole) / name).read_bytes(), name


@pytest.mark.parametrize("surgeon", ["pcgrad_languages", "upgrad"])
def test_per_language_surgeons_run_on_the_steps_with_shots(mini_dir, tiny_model, tmp_path, surgeon):
    import pandas as pd

    config = mini_config(mini_dir, tiny_model, tmp_path, surgeon)
    run_experiment(config)
    log = pd.read_csv(run_dir(config) / "surgery.csv")
    # 240 English + 6 x 5 shots, batches of 16: most steps hold a shot; each surgery costs >= 2 language passes
    assert (log["surgery_rate"] > 0.5).all() and (log["language_passes"] >= 2 * log["surgery_rate"] * 17).all()
    assert log["oracle_en"].sum() == 0 and log.filter(like="oracle_q").to_numpy().sum() > 0
