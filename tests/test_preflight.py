"""The preflight of `fslib batch`: before anything trains, every split the runs to do read is opened, and every
problem (a missing file, test labels stripped by XTREME's script, too few examples for K shots, a language the
hub lacks) is listed at once; the batch stops, a dry run prints them beside the cost and exits non-zero."""

import shutil
from pathlib import Path

import yaml

from fslib.batch.preflight import Need, needs, preflight
from fslib.cli import main
from fslib.store.config import RunConfig


def test_the_splits_each_method_reads():
    xnli = RunConfig(task="xnli", method="ord-FS+dev", k=5, seed=1, model="m", languages=["en", "qa", "qb"])
    assert needs(xnli) == [Need("en", "train"), Need("en", "dev"), Need("qa", "dev", 5), Need("qb", "dev", 5),
                           Need("qa", "dev"), Need("qb", "dev"), Need("en", "test"), Need("qa", "test"),
                           Need("qb", "test")]
    # the authors' TyDiQA: no English dev split, no target dev curves; a subset of targets is co-trained
    tydiqa = RunConfig(task="tydiqa", method="gradient-co-train", k=1, seed=1, model="m", languages=["en", "ar", "bn"],
                       target_langs=["ar"], hold_out_source_dev=False, selection="last", target_dev_curves=False)
    assert needs(tydiqa) == [Need("en", "train"), Need("ar", "train", 1), Need("en", "test"), Need("ar", "test"),
                             Need("bn", "test")]
    zero = RunConfig(task="ner", method="zero-shot", k=0, seed=1, model="m", languages=["en", "de"])
    assert needs(zero) == [Need("en", "train"), Need("en", "dev"), Need("en", "test"), Need("de", "test")]


def broken_copy(mini_dir: Path, root: Path) -> Path:
    """NER and XNLI of the offline benchmark with three faults: qb's NER test labels stripped as XTREME's script
    does, qc's NER dev file missing, qa's XNLI dev file cut to 4 pairs (fewer than 5 shots of a class)."""
    data = root / "download"
    for folder in ("panx", "xnli"):
        shutil.copytree(mini_dir / folder, data / folder)
    stripped = data / "panx" / "test-qb.tsv"
    stripped.write_text("".join(line.split("\t")[0].rstrip("\n") + "\n" for line in stripped.open()))
    (data / "panx" / "dev-qc.tsv").unlink()
    dev = data / "xnli" / "dev-qa.tsv"
    dev.write_text("".join(dev.read_text().splitlines(keepends=True)[:4]))
    return data


def params(root: Path, name: str, grids: list, **defaults) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"model": "never-loaded", "output_dir": str(root / "out"),
                                                 **defaults}, "grids": grids}))
    return path


def test_the_batch_lists_every_problem_before_training(mini_dir, tmp_path, capsys):
    data = broken_copy(mini_dir, tmp_path)
    local = params(tmp_path, "local", [
        {"task": "ner", "methods": ["ord-FS+dev", "gradient-co-train"], "k": [1], "seeds": [1, 2],
         "languages": ["en", "qa", "qb", "qc"]},
        {"task": "xnli", "methods": ["ord-FS"], "k": [5], "seeds": [1], "languages": ["en", "qa"]}],
        source="xtreme", data_dir=str(data))
    hub = params(tmp_path, "hub", [{"task": "ner", "methods": ["zero-shot"], "seeds": [1], "languages": ["en", "qu"]}],
                 source="hub")

    assert main(["batch", str(local), str(hub), "--no-reports"]) == 2
    err = capsys.readouterr().err
    assert "preflight: 4 problem(s) in the data of the 6 run(s) to do" in err
    assert f"{data / 'panx' / 'test-qb.tsv'}:1: a token without a label; XTREME's download_data.sh removes" in err
    assert "needed for qb test, by 4 run(s)" in err
    # the missing file, and which languages have that split
    assert f"{data / 'panx' / 'dev-qc.tsv'}: no such file" in err and "with this split there: en, qa, qb, qd" in err
    assert "needed for qc dev, by 4 run(s)" in err  # ord-FS+dev's selection and co-training's curves
    assert "xnli 'qa' dev: fewer than k=5 examples of class" in err
    assert "google/xtreme has no ner data for 'qu'" in err and "needed for qu test, by 1 run(s)" in err
    assert "note: whether google/xtreme has the configs PAN-X.en was not checked: the hub is switched off" in err
    # no source model, no run folder: nothing started (the batch's lock on the output folder is all there is)
    assert {path.name for path in (tmp_path / "out").glob("*")} <= {"batch.lock"}

    # a dry run prints the cost too, and the same problems, and exits non-zero
    assert main(["batch", str(local), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "estimated cost of the grid" in captured.out and "3 problem(s)" in captured.err

    # with the data mended, the same grid passes
    shutil.rmtree(data)
    shutil.copytree(mini_dir / "panx", data / "panx")
    shutil.copytree(mini_dir / "xnli", data / "xnli")
    assert main(["batch", str(local), "--dry-run"]) == 0
    assert "preflight: 17 language splits of the 5 run(s) to do read; all present and labelled" in \
        capsys.readouterr().out


def test_tydiqa_stripped_answers_and_a_ud_language_without_treebank(mini_dir, tmp_path):
    dev = tmp_path / "download" / "tydiqa" / "tydiqa-goldp-v1.1-dev"
    shutil.copytree(mini_dir / "tydiqa", tmp_path / "download" / "tydiqa")
    path = dev / "tydiqa.goldp.qa.dev.json"
    path.write_text(path.read_text().replace('"text": "', '"text": "" , "_": "'))  # answers emptied
    tydiqa = RunConfig(task="tydiqa", method="zero-shot", k=0, seed=1, model="m", source="xtreme",
                       data_dir=str(tmp_path / "download"), languages=["en", "qa"])
    ud = RunConfig(task="pos", method="zero-shot", k=0, seed=1, model="m", source="ud",
                   data_dir=str(tmp_path / "ud"), languages=["en"])
    (tmp_path / "ud").mkdir()
    found = preflight([tydiqa, ud])
    messages = "\n".join(found.problems)
    assert f"{path}: question" in messages and "has no answer text" in messages
    assert "no UD treebank for language 'en'" in messages
    assert len(found.problems) == 2
