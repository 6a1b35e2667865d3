"""Every run says what produced it (fslib.store.provenance, fslib.engine.provenance): a real run on the offline
benchmark writes provenance.json (in its manifest), whose data and model checksums are the files' SHA-256 computed
here independently; load_results exposes it as columns; the reports' signature and the mixed-engine warning read
those columns; none of it changes the config hash."""

import hashlib
import json
from pathlib import Path

import pandas as pd

from fslib.core.languages import MINI_LANGS
from fslib.engine.runner import run_dir, run_experiment
from fslib.store.config import RunConfig
from fslib.store.ledger import corruption
from fslib.store.provenance import PROVENANCE_COLUMNS, PROVENANCE_FILE, engine_note, signature
from fslib.store.results import MANIFEST_FILE, load_results


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_run_records_its_kit_libraries_device_data_and_model(mini_dir, tiny_model, tmp_path):
    config = RunConfig(task="ner", method="zero-shot", k=0, seed=1, model=str(tiny_model), data_dir=str(mini_dir),
                       languages=list(MINI_LANGS[:3]), output_dir=str(tmp_path), epochs=1, learning_rate=1e-3,
                       max_train_examples=40, max_eval_examples=10, progress=False, device="cpu")
    before = config.config_hash
    run_experiment(config)
    folder = run_dir(config)
    record = json.loads((folder / PROVENANCE_FILE).read_text())
    assert PROVENANCE_FILE in json.loads((folder / MANIFEST_FILE).read_text())["files"]
    # every split file of the three languages, hashed as the bytes on disk are
    expected = {f"panx/{split}-{lang}.tsv": sha256(Path(mini_dir) / "panx" / f"{split}-{lang}.tsv")
                for lang in MINI_LANGS[:3] for split in ("train", "dev", "test")}
    assert record["data"]["files"] == expected
    assert record["model"]["files"] == {path.name: sha256(path) for path in sorted(Path(tiny_model).iterdir())
                                        if path.is_file()}
    assert record["device"]["type"] == "cpu" and record["device"]["name"]
    assert len(record["kit"]["commit"]) == 40 and isinstance(record["kit"]["dirty"], bool)
    assert record["libraries"]["torch"].split("+")[0] == __import__("torch").__version__.split("+")[0]
    rows = load_results(folder)
    assert list(rows.columns[-len(PROVENANCE_COLUMNS):]) == PROVENANCE_COLUMNS
    assert set(rows["kit_commit"]) == {record["kit"]["commit"]} and set(rows["device"]) == {record["device"]["name"]}
    assert set(rows["data_sha256"]) == {record["data"]["sha256"]}
    assert set(rows["model_revision"]) == {record["model"]["sha256"]}
    assert config.config_hash == before
    assert corruption(folder) is None
    (folder / PROVENANCE_FILE).write_text(json.dumps({**record, "device": {"name": "edited"}}))
    assert "provenance.json" in corruption(folder)  # listed in the manifest: an edited record is noticed


def rows_of(run_id: str, commit: str | None, dirty: bool = False) -> pd.DataFrame:
    provenance = dict.fromkeys(PROVENANCE_COLUMNS, pd.NA)
    if commit:
        provenance.update(kit_version="0.1.0", kit_commit=commit, kit_dirty=dirty, torch="2.5.1",
                          transformers="4.46.0", datasets="3.1.0", device="NVIDIA H100", data_sha256="abc123",
                          model_revision="deadbeef")
    return pd.DataFrame([{"task": "ner", "method": "ord-FS", "model": "xlm-roberta-large", "k": 5, "seed": 1,
                          "lang": "de", "split": "test", "metric": "f1", "value": 70.0, "run_id": run_id,
                          **provenance}])


def test_signature_names_the_engine_and_the_warning_fires_only_when_engines_differ():
    same = pd.concat([rows_of("a", "1" * 40), rows_of("b", "1" * 40)])
    line = signature(same)
    assert line.startswith("signature: 2 runs · fslib 0.1.0@1111111111 ·")
    assert "torch 2.5.1" in line and "device NVIDIA H100" in line and "xlm-roberta-large@deadbeef" in line
    assert engine_note(same) is None
    mixed = pd.concat([same, rows_of("c", "2" * 40)])
    note = engine_note(mixed)
    assert note.startswith("these results mix 2 engine versions") and "(2 runs)" in note and "(1 runs)" in note
    assert "0.1.0@1111111111" in signature(mixed) and "0.1.0@2222222222" in signature(mixed)
    assert engine_note(pd.concat([same, rows_of("d", "1" * 40, dirty=True)])) is not None  # uncommitted changes
    assert "unrecorded" in engine_note(pd.concat([same, rows_of("e", None)]))  # a run from before provenance
