"""Source models are keyed by what their files hold: a `cp -r` copy of a checkout (new modification times) keeps
its source models, changed bytes train anew, and a source model keyed the old way (sizes and modification times)
is still used while its files keep those."""

import os
import shutil
import time
from pathlib import Path

import fslib.store.content_keys
from fslib.store.config import RunConfig
from fslib.store.source_models import (
    SOURCE_RECORD,
    _source_files,
    _source_model_key_folder,
    _stamp,
    source_model_folder,
)


def checkout(root: Path, mini_dir: Path) -> RunConfig:
    shutil.copytree(mini_dir, root / "data")
    model = root / "models" / "m"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "model.safetensors").write_bytes(os.urandom(4096))
    return config_at(root)


def config_at(root: Path) -> RunConfig:
    return RunConfig(task="ner", method="ord-FS", k=1, seed=1, model=str(root / "models" / "m"),
                     data_dir=str(root / "data"), output_dir=str(root / "outputs"), languages=["en", "qa"])


def finish_source_model(config: RunConfig) -> Path:
    folder = source_model_folder(config)
    folder.mkdir(parents=True)
    (folder / SOURCE_RECORD).write_text("{}")
    return folder


def test_a_plain_copy_keeps_its_source_models_and_changed_bytes_do_not(tmp_path, mini_dir):
    original = checkout(tmp_path / "a", mini_dir)
    trained = finish_source_model(original)
    time.sleep(0.01)
    shutil.copytree(tmp_path / "a", tmp_path / "b", copy_function=shutil.copy)  # cp -r: new modification times
    copy = config_at(tmp_path / "b")
    assert _stamp(Path(copy.model) / "model.safetensors") != _stamp(Path(original.model) / "model.safetensors")
    assert source_model_folder(copy).relative_to(tmp_path / "b") == trained.relative_to(tmp_path / "a")
    assert (source_model_folder(copy) / SOURCE_RECORD).exists()

    train = next(path for path in _source_files(copy.resolved()) if path.name.startswith("train"))
    train.write_text(train.read_text().replace("B-", "I-", 1))  # other bytes: another source model
    assert source_model_folder(copy).relative_to(tmp_path / "b") != trained.relative_to(tmp_path / "a")


def test_a_source_model_keyed_by_modification_times_is_still_used(tmp_path, mini_dir):
    config = checkout(tmp_path / "a", mini_dir)
    files = _source_files(config.resolved())
    before = _source_model_key_folder(config, [_stamp(path) for path in files])  # what the kit used to compute
    before.mkdir(parents=True)
    assert source_model_folder(config) != before  # not finished: the content key is where training goes
    (before / SOURCE_RECORD).write_text("{}")
    assert source_model_folder(config) == before


def test_checksums_are_cached_and_redone_when_a_file_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(fslib.store.content_keys, "_memo", {})
    hashed = []
    real = fslib.store.content_keys.fingerprint
    monkeypatch.setattr(fslib.store.content_keys, "fingerprint", lambda path: hashed.append(path) or real(path))
    data = tmp_path / "weights.bin"
    data.write_bytes(b"a" * 100)
    first = fslib.store.content_keys.checksum(data)
    monkeypatch.setattr(fslib.store.content_keys, "_memo", {})  # another process: the cache file answers
    assert fslib.store.content_keys.checksum(data) == first and hashed == [data]
    data.write_bytes(b"b" * 100)
    os.utime(data, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert fslib.store.content_keys.checksum(data) != first and len(hashed) == 2
