"""shot_seed: the K-shot draw apart from the training seed. Runs made before the field keep their hash; a grid's
`shot_seeds` axis crosses shot draws with training seeds; the shots follow shot_seed, not seed."""

import json

import yaml

from fslib.batch.params import load_params
from fslib.store.config import RunConfig


def test_runs_without_shot_seed_keep_their_hash(tmp_path):
    run = RunConfig(task="ner", method="ord-FS", k=1, seed=1, model="m")
    assert run.config_hash == "d9dae5a0e4bb"  # pinned before shot_seed existed (tests/test_precision.py)
    values = run.to_dict()
    del values["shot_seed"]  # a config.json written before the field
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert RunConfig.load(tmp_path / "config.json").config_hash == "d9dae5a0e4bb"
    other = RunConfig(task="ner", method="ord-FS", k=1, seed=1, model="m", shot_seed=7)
    assert other.config_hash != run.config_hash and (other.shots_seed, run.shots_seed) == (7, 1)


def test_grid_axis_crosses_shot_draws_with_training_seeds(tmp_path, mini_dir):
    params = tmp_path / "grid.yaml"
    params.write_text(yaml.safe_dump({
        "defaults": {"model": "m", "source": "xtreme", "data_dir": str(mini_dir), "output_dir": str(tmp_path)},
        "grids": [{"task": "ner", "methods": ["ord-FS"], "k": [5], "seeds": [1, 2], "shot_seeds": [11, 12],
                   "languages": ["en", "qa"]}]}))
    runs = load_params(params).runs
    assert sorted((run.seed, run.shot_seed) for run in runs) == [(1, 11), (1, 12), (2, 11), (2, 12)]
    assert len({run.config_hash for run in runs}) == 4


def test_shots_follow_shot_seed(mini_dir, tiny_model):
    from fslib.engine.stages import Experiment

    def shots(**seeds):
        config = RunConfig(task="ner", method="ord-FS", k=5, model=str(tiny_model), source="xtreme",
                           data_dir=str(mini_dir), languages=["en", "qa"], device="cpu", **seeds)
        return Experiment(config).examples("qa", "shots").to_list()

    assert shots(seed=1, shot_seed=2) == shots(seed=2)
    assert shots(seed=1, shot_seed=2) != shots(seed=1)
