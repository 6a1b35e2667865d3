"""Shared fixtures. The datasets cache goes to a per-session folder so tests never see a stale cache, and the
hub is switched off: everything runs offline on files the kit writes itself."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_CACHE = tempfile.mkdtemp(prefix="fslib-test-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)  # leave nothing in /tmp
os.environ["HF_DATASETS_CACHE"] = _CACHE
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["FSLIB_CHECKSUM_CACHE"] = os.path.join(_CACHE, "checksums.json")  # not the user's cache
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import socket  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if item.get_closest_marker("cuda"):
                item.add_marker(skip)


@pytest.fixture
def stand_in_ner_notebook(tmp_path):
    """Writes `tmp_path/notebooks/ner.ipynb`, a stand-in for the NER notebook: the real one's parameters, then the
    code cells given; returns the folder (for FSLIB_NOTEBOOKS)."""
    import nbformat

    def write(*cells: str) -> Path:
        notebook = nbformat.v4.new_notebook()
        notebook.metadata.update(kernelspec={"name": "python3", "language": "python", "display_name": "Python 3"},
                                 language_info={"name": "python"})
        parameters = nbformat.v4.new_code_cell(
            "task = method = model = source = data_dir = output_dir = device = None\n"
            "k = seed = alpha = epochs = learning_rate = None\nlanguages = target_langs = method_label = None\n"
            "train_batch_size = target_batch_size = None\nextra = {}")
        parameters.metadata["tags"] = ["parameters"]
        notebook.cells = [parameters, *map(nbformat.v4.new_code_cell, cells)]
        folder = tmp_path / "notebooks"
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / "ner.ipynb")
        return folder

    return write


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """Write a module defined by a test (`plugin_module(name, source)`), importable in this process and in the
    batch's workers and kernels (PYTHONPATH): how a user's surgeon, task or executor reaches every process."""
    import sys

    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", f"{folder}:{os.environ.get('PYTHONPATH', '')}")
    written = []

    def write(name: str, source: str) -> Path:
        written.append(name)
        (folder / f"{name}.py").write_text(source)
        return folder / f"{name}.py"

    yield write
    for name in written:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def xtreme_fixtures() -> Path:
    return FIXTURES / "xtreme"


@pytest.fixture(scope="session")
def mini_dir(tmp_path_factory) -> Path:
    from fslib.prepare.mini import generate

    return generate(tmp_path_factory.mktemp("mini"), seed=0)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, mini_dir) -> Path:
    from fslib.prepare.mini.model import build_tiny_model, mini_corpus

    return build_tiny_model(tmp_path_factory.mktemp("tiny-xlmr"), mini_corpus(mini_dir))


@pytest.fixture(scope="session")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


# ---- Slurm's commands faked, for tests that build a SlurmExecutor but must never reach a cluster ---------------
SLURM_COMMANDS = ("srun", "sbatch", "squeue", "scontrol", "sinfo", "scancel", "sacct")


@pytest.fixture
def fake_slurm_commands(tmp_path_factory, monkeypatch) -> Path:
    """Puts first on the PATH a folder whose Slurm commands each fail loudly (exit 97), so submitit accepts a
    SlurmExecutor on a machine without Slurm (it only looks for `srun`), a real Slurm installed by
    `make test-slurm` is never reached, and any submission the test did not expect fails."""
    folder = tmp_path_factory.mktemp("fake-slurm-bin")
    for command in SLURM_COMMANDS:
        script = folder / command
        script.write_text(f"#!/bin/sh\necho 'fake {command}: no Slurm in this test' >&2\nexit 97\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return folder


# ---- a real one-node Slurm cluster (scripts/slurm-test-cluster.sh), for the tests marked `slurm` ------------
REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm-test-cluster.sh"
OPT_IN = "FSLIB_SLURM_TESTS"


def _script(cmd: str, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", str(SCRIPT), cmd], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"slurm-test-cluster.sh {cmd} failed (rc={proc.returncode})\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}",
            pytrace=False,
        )
    return proc


def _skip_reason() -> str | None:
    if os.environ.get(OPT_IN) != "1":
        return f"real Slurm cluster tests are opt-in: set {OPT_IN}=1 (make test-slurm)"
    if shutil.which("bash") is None:
        return "no bash"
    proc = _script("available", timeout=60, check=False)
    if proc.returncode != 0:
        return (proc.stdout + proc.stderr).strip() or "slurm-test-cluster.sh available failed"
    return None


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        _script("install", timeout=900)
        _script("start", timeout=300)
        env = _script("env", timeout=30).stdout.strip()
        assert env.startswith("export SLURM_CONF="), env
        conf = env.split("=", 1)[1]
        with pytest.MonkeyPatch.context() as mp:
            # sbatch/squeue/scancel/sacct (called by submitit) and, via sbatch's default --export=ALL,
            # the job's own srun need the private config
            mp.setenv("SLURM_CONF", conf)
            yield {"conf": conf, "node": socket.gethostname().split(".")[0]}
    finally:
        _script("stop", timeout=180, check=False)
