"""`max_train_examples` draws a sample of the source train set with the run's seed (fslib.data.capped_rows), so that
seeds resample it. Capped runs hash apart from the first-rows runs made before and uncapped ones keep their hash:
tests/test_dry_run_fixtures.py pins both (the mini and real grids cap, the paper and authors presets do not)."""

from fslib.core.languages import MINI_LANGS
from fslib.data import load_split
from fslib.engine.stages import Experiment
from fslib.store.config import RunConfig


def capped(mini_dir, tiny_model, seed, cap=50):
    config = RunConfig(task="ner", method="zero-shot", k=0, seed=seed, model=str(tiny_model), data_dir=str(mini_dir),
                       languages=list(MINI_LANGS[:2]), max_train_examples=cap, progress=False, device="cpu")
    return Experiment(config).examples("en", "train")


def sentences(dataset) -> list[str]:
    return [" ".join(tokens) for tokens in dataset["tokens"]]


def test_the_cap_is_a_seeded_sample_that_seeds_redraw(mini_dir, tiny_model):
    full = sentences(load_split("ner", "en", "train", source="xtreme", data_dir=str(mini_dir)))
    first, again, other = (sentences(capped(mini_dir, tiny_model, seed)) for seed in (1, 1, 2))
    assert len(first) == len(other) == 50 and len(full) > 100
    assert first == again  # the same seed, the same rows
    assert first != full[:50]  # not the first rows ...
    assert len(set(first) & set(other)) < 40  # ... and another seed draws other rows (50 of ~600: ~4 shared)
    positions = [full.index(sentence) for sentence in first]
    assert positions == sorted(positions)  # kept in file order
    assert sentences(capped(mini_dir, tiny_model, 1, cap=10_000)) == full  # a cap above the size keeps all

