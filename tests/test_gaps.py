"""Details that change a reproduced number without any error: SQuAD F1 over token counts, NER chunks that start
with I-, XNLI shots nested across K and removed from dev, TyDiQA's held-out English tenth, predictions put back in
order after length-sorted batches, cosines summed in float64, and the parameter file's error messages."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset

from fslib.batch.params import ParamsError, load_params
from fslib.data import load_shots, load_split, shot_indices
from fslib.engine.diagnostics import cosine_matrix
from fslib.engine.evaluation import predict
from fslib.engine.metrics import accuracy, squad_f1_em, tagging_f1
from fslib.engine.surgeons.stochastic import StochasticGradientSurgery
from fslib.engine.surgery import FlatGradients, project_conflicting
from fslib.formats.xtreme import read_xtreme, xtreme_path


# ---- metrics -----------------------------------------------------------------------------------------------
def test_squad_f1_counts_repeated_tokens():
    # prediction x y y y, gold y y z: 2 tokens in common (y twice), P = 2/4, R = 2/3, F1 = 4/7
    assert squad_f1_em(["x y y y"], [["y y z"]])["f1"] == pytest.approx(100 * 4 / 7)
    # each occurrence counts: "y" against "y y" is P = 1, R = 1/2; "y y y" against "y" is P = 1/3, R = 1
    assert squad_f1_em(["y"], [["y y"]])["f1"] == pytest.approx(100 * 2 / 3)
    assert squad_f1_em(["y y y"], [["y"]])["f1"] == pytest.approx(100 * 2 / 4)


def test_squad_exact_match_after_normalisation_only():
    assert squad_f1_em(["The  Cat."], [["cat"]]) == {"f1": 100.0, "exact_match": 100.0}
    assert squad_f1_em(["cats"], [["cat"]]) == {"f1": 0.0, "exact_match": 0.0}
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        squad_f1_em(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="no predictions"):
        squad_f1_em([], [])


def test_metric_input_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"^accuracy needs equally long, non-empty label lists \(got 2 and 1\)$"):
        accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="^gold and predicted tag sequences must have the same number of sentences"):
        tagging_f1([["O"]], [["O"], ["O"]])


def test_ner_chunks_may_start_with_i():
    # seqeval's default (as XTREME scores it): an I- tag after O or after another type starts a chunk
    gold = [["I-PER", "I-PER", "O", "I-LOC", "I-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC", "B-ORG"]]
    assert tagging_f1(gold, pred) == 100.0
    # I-PER I-PER is one two-token chunk: predicting two one-token chunks finds neither
    assert tagging_f1([["I-PER", "I-PER"]], [["B-PER", "B-PER"]]) == 0.0


# ---- shots and splits --------------------------------------------------------------------------------------
def xnli_pool(per_class=12):
    labels = [label for label in ("contradiction", "entailment", "neutral") for _ in range(per_class)]
    return Dataset.from_dict({"premise": [f"p{i}" for i in range(len(labels))], "hypothesis": ["h"] * len(labels),
                              "label": labels, "lang": ["fr"] * len(labels)})


def test_xnli_shots_are_nested_across_k_class_by_class():
    pool = xnli_pool()
    ten = shot_indices(pool, "xnli", 10, seed=2)
    labels = pool["label"]
    for k in (1, 5):
        smaller = shot_indices(pool, "xnli", k, seed=2)
        for label in ("contradiction", "entailment", "neutral"):
            assert [i for i in smaller if labels[i] == label] == [i for i in ten if labels[i] == label][:k]
    assert shot_indices(pool, "xnli", 5, seed=2) != shot_indices(pool, "xnli", 5, seed=3)


def test_xnli_target_dev_is_the_dev_file_without_the_shots(xtreme_fixtures):
    full = load_split("xnli", "fr", "dev", source="xtreme", data_dir=xtreme_fixtures)
    dev = load_split("xnli", "fr", "dev", source="xtreme", data_dir=xtreme_fixtures, k=1, seed=1)
    shots = load_shots("xnli", "fr", 1, 1, source="xtreme", data_dir=xtreme_fixtures)
    rows = lambda data: sorted((r["premise"], r["hypothesis"], r["label"]) for r in data)  # noqa: E731
    assert len(dev) == len(full) - 3
    assert sorted(rows(dev) + rows(shots)) == rows(full)


def test_tydiqa_english_dev_is_a_fixed_tenth_of_train(mini_dir):
    train = load_split("tydiqa", "en", "train", source="xtreme", data_dir=mini_dir)
    dev = load_split("tydiqa", "en", "dev", source="xtreme", data_dir=mini_dir)
    file_rows = Dataset.from_list(list(read_xtreme("tydiqa", xtreme_path(mini_dir, "tydiqa", "en", "train"))))
    n = len(file_rows)
    assert len(dev) == max(1, round(n / 10)) and len(train) == n - len(dev)
    assert set(train["id"]).isdisjoint(dev["id"]) and set(train["id"]) | set(dev["id"]) == set(file_rows["id"])
    # the same tenth for every seed and K (k and seed only matter for targets)
    again = load_split("tydiqa", "en", "dev", source="xtreme", data_dir=mini_dir, k=5, seed=3)
    assert again["id"] == dev["id"]
    assert dev["id"] != file_rows["id"][:len(dev)]  # drawn at random, not the first tenth


# ---- evaluation ----------------------------------------------------------------------------------------------
class Echo(torch.nn.Module):
    """Predicts, at every position (tagging) or for the sequence (classification), the input id itself."""

    def __init__(self, per_token: bool):
        super().__init__()
        self.per_token = per_token
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        logits = torch.nn.functional.one_hot(input_ids, 50).float()
        return SimpleNamespace(logits=logits if self.per_token else logits[:, 0])


def collate(rows):
    width = max(len(r["input_ids"]) for r in rows)
    return {"input_ids": torch.tensor([r["input_ids"] + [0] * (width - len(r["input_ids"])) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                            for r in rows]),
            "langs": ["xx"] * len(rows)}


@pytest.mark.parametrize("per_token", [True, False])
def test_predict_puts_length_sorted_batches_back_in_order(per_token):
    lengths = [5, 1, 4, 2, 7, 3, 3, 6, 2]
    features = Dataset.from_dict({"input_ids": [[10 + i] * n for i, n in enumerate(lengths)]})
    outputs = predict(Echo(per_token), features, collate, batch_size=2, device=torch.device("cpu"), progress=False)
    if per_token:  # one prediction per real position, none for the padding
        assert outputs == [[10 + i] * n for i, n in enumerate(lengths)]
    else:
        assert outputs == [10 + i for i in range(len(lengths))]


# ---- the projection, as the surgeon calls it ------------------------------------------------------------------
def test_projection_written_over_the_reference_gradient():
    """The surgeon passes the dot products it already has and writes the result over the oracle gradient (its
    buffer is the model's gradient storage): the same numbers as the plain call, and no new buffer."""
    generator = torch.Generator().manual_seed(5)
    g, g_ref = torch.randn(1000, generator=generator), torch.randn(1000, generator=generator)
    g_ref = g_ref if torch.dot(g, g_ref) < 0 else -g_ref
    expected = project_conflicting(g, g_ref)
    assert torch.allclose(expected, g - torch.dot(g, g_ref) / torch.dot(g_ref, g_ref) * g_ref, atol=1e-6)
    buffer = g_ref.clone()
    result = project_conflicting(g, buffer, dot=torch.dot(g, g_ref), ref_norm2=torch.dot(g_ref, g_ref), out=buffer)
    assert result.data_ptr() == buffer.data_ptr() and torch.equal(result, expected)
    same_side = -g_ref
    assert torch.equal(project_conflicting(g, same_side, out=same_side.clone()), g)


def test_surgery_statistics_after_a_single_application():
    """One application, one surgery, one conflict: the rates are 1 and the mean cosine is that one cosine."""
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    grads = FlatGradients([w])
    surgeon = StochasticGradientSurgery(grads, ["de"], alpha=1.0, seed=0,
                                        oracle_loss=lambda lang: -(w * torch.tensor([1.0, 0.0])).sum())
    (w * torch.tensor([1.0, 1.0])).sum().backward()  # training gradient [1, 1], oracle gradient [-1, 0]
    surgeon()
    assert surgeon.stats() == {"surgery_rate": 1.0, "conflict_rate": 1.0,
                               "mean_cosine": pytest.approx(-2 ** -0.5), "skipped_surgeries": 0.0,
                               "oracle_de": 1.0}
    assert torch.equal(w.grad, torch.tensor([0.0, 1.0]))
    surgeon.reset_stats()
    assert surgeon.stats()["surgery_rate"] == 0.0 and surgeon.stats()["oracle_de"] == 0.0


# ---- gradient cosines ----------------------------------------------------------------------------------------
def test_cosines_are_summed_in_float64_where_float32_is_off():
    """Off-diagonal cosines of long float32 vectors whose coordinates span six orders of magnitude: summed in
    float32 they are off by ~1e-7 (measured here), the kit's float64 sums agree with NumPy's to 1e-12."""
    generator = torch.Generator().manual_seed(0)
    scale = torch.logspace(-3, 3, 2_000_000)
    a = torch.randn(2_000_000, generator=generator) * scale
    b = 0.6 * a + 0.8 * torch.randn(2_000_000, generator=generator) * scale
    c = -a + 0.1 * torch.randn(2_000_000, generator=generator) * scale
    vectors = torch.stack([a, b, c])
    exact = vectors.numpy().astype(np.float64)
    gram = exact @ exact.T
    expected = gram / np.sqrt(np.outer(gram.diagonal(), gram.diagonal()))
    in_float32 = (vectors @ vectors.T).double()
    float32_cosines = in_float32 / torch.outer(in_float32.diagonal().sqrt(), in_float32.diagonal().sqrt())
    assert np.abs(float32_cosines.numpy() - expected).max() > 1e-9  # float32 is measurably off here
    assert np.abs(cosine_matrix(vectors).numpy() - expected).max() < 1e-12
    assert np.abs(cosine_matrix(vectors, chunk=1 << 18).numpy() - expected).max() < 1e-12


# ---- parameter files: every refusal names the file, the key and what is valid ---------------------------------
def write(tmp_path, text: str):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


GRID = {"task": "ner", "methods": ["ord-FS"], "k": [1], "seeds": [1], "languages": ["en", "de"]}


@pytest.mark.parametrize("document, message", [
    ({"defaults": {"model": "m"}, "grids": [], "extra": 1},
     r"top level: unknown key\(s\) extra; valid keys: prepare, defaults, grids, cluster, description"),
    ({"defaults": {"model": "m"}, "grids": []}, r"grids: expected a non-empty list of grids"),
    ({"defaults": {"model": "m"}, "grids": {"task": "ner"}}, r"grids: expected a non-empty list of grids"),
    ({"prepare": "online", "defaults": {"model": "m"}, "grids": [GRID]},
     r"prepare: 'online' is not valid; valid: offline"),
    ({"prepare": "offline", "defaults": {"model": "m"}, "grids": [GRID]},
     r"prepare: offline needs source: xtreme and a data_dir"),
    ({"defaults": {"model": "m", "seed": 3}, "grids": [GRID]}, r"defaults: unknown key\(s\) seed; valid keys: "),
    ({"defaults": ["model"], "grids": [GRID]}, r"defaults: expected a mapping, got list"),
    ({"defaults": {"model": "m"}, "grids": [{**GRID, "task": "qa"}]},
     r"grids\[0\].task: 'qa' is not a task; valid tasks: ner, pos, tydiqa, xnli"),
    ({"defaults": {"model": "m"}, "grids": [{**GRID, "config": {"k": 3}}]},
     r"grids\[0\].config: unknown key\(s\) k; valid keys: "),
    ({"defaults": {"model": "m"}, "grids": [{**GRID, "k": [1, 0]}]},
     r"grids\[0\].k: expected positive integers, got \[1, 0\]"),
    ({"defaults": {"model": "m"}, "grids": [{**GRID, "seeds": "one"}]},
     r"grids\[0\].seeds: expected positive integers, got 'one'"),
    ({"defaults": {"model": "m"}, "grids": [{**GRID, "languages": "de"}]},
     r"grids\[0\].languages: expected 'all' or a list of language codes, got 'de'"),
    ({"defaults": {"model": "m"}, "grids": [{**GRID, "target_sets": [[]]}]},
     r"grids\[0\].target_sets: expected a list of non-empty lists of language codes"),
    ({"defaults": {"model": "m"}, "grids": [{**GRID, "target_sets": [["zz"]]}]},
     r"grids\[0\].target_sets: unknown language\(s\) zz for ner"),
    ({"defaults": {"model": "m", "grad_accum": 3}, "grids": [GRID]},
     r"grids\[0\]: train_batch_size 32 is not a multiple of grad_accum 3"),
    ({"defaults": {"model": "m"}, "grids": [GRID, GRID]},
     r"grids: the same run twice: ner-ord-FS-k1-seed1-"),
])
def test_parameter_file_errors(tmp_path, document, message):
    path = write(tmp_path, yaml.safe_dump(document))
    with pytest.raises(ParamsError, match=message) as error:
        load_params(path)
    assert str(error.value).startswith(f"{path}: ")


def test_parameter_file_missing_or_not_yaml(tmp_path):
    with pytest.raises(ParamsError, match="no such parameter file"):
        load_params(tmp_path / "missing.yaml")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(write(tmp_path, "grids: [task: ner\n"))


def test_parameter_file_expands_grids_and_target_sets(tmp_path):
    path = write(tmp_path, yaml.safe_dump({"defaults": {"model": "m", "alpha": 0.3}, "grids": [
        {"task": "ner", "methods": ["zero-shot", "gradient-co-train"], "k": [1, 5], "seeds": [1, 2],
         "languages": ["de", "en", "fr"], "config": {"alpha": 0.5}},
        {"task": "ner", "methods": ["gradient-co-train"], "label": "gradient-single", "k": 5, "seeds": 1,
         "target_sets": [["de"], ["fr"]]}]}))
    runs = load_params(path).runs
    assert [(r.method, r.k, r.seed) for r in runs[:6]] == [
        ("zero-shot", 0, 1), ("zero-shot", 0, 2), ("gradient-co-train", 1, 1), ("gradient-co-train", 1, 2),
        ("gradient-co-train", 5, 1), ("gradient-co-train", 5, 2)]
    assert all(r.languages == ["en", "de", "fr"] and r.alpha == 0.5 for r in runs[:6])  # the source first
    assert [(r.method_label, r.target_langs, r.languages, r.alpha) for r in runs[6:]] == [
        ("gradient-single", ["de"], ["en", "de"], 0.3), ("gradient-single", ["fr"], ["en", "fr"], 0.3)]
