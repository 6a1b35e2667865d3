"""Notebooks run on the kit's own interpreter, whatever kernelspecs named "fslib" or "python3" a user has, and
leave nothing in the temporary directory: not after a normal run, and not after a killed one once the next
run has started. Real processes, a real kernel, SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from fslib.core.execution import kit_kernel_dirs

PROBE = ["import os, sys, time\n"
         "from pathlib import Path\n"
         "Path(out).write_text(json.dumps({'executable': sys.executable, 'pid': os.getpid()}))\n"
         "time.sleep(sleep)"]


@pytest.fixture
def setting(tmp_path):
    """A probe notebook, a private temporary directory, and user-level kernelspecs "fslib" and "python3" that
    run another program (what a user's ~/.local/share/jupyter may hold)."""
    notebooks, tmp = tmp_path / "notebooks", tmp_path / "tmp"
    notebooks.mkdir(), tmp.mkdir()
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "fslib", "language": "python",
                                                                  "display_name": "fslib"}})
    parameters = nbformat.v4.new_code_cell("import json\nout = ''\nsleep = 0.0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(PROBE[0])]
    nbformat.write(notebook, notebooks / "probe.ipynb")
    for name in ("fslib", "python3"):
        spec = tmp_path / "user-jupyter" / "kernels" / name
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({"argv": ["/bin/false", "{connection_file}"],
                                                      "display_name": "another interpreter", "language": "python"}))
    env = {**os.environ, "TMPDIR": str(tmp), "FSLIB_NOTEBOOKS": str(notebooks),
           "JUPYTER_PATH": str(tmp_path / "user-jupyter"), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return tmp_path, tmp, env


def execute(tmp_path: Path, env: dict, name: str, sleep: float) -> subprocess.Popen:
    code = ("import sys; from pathlib import Path; from fslib.core.execution import execute_notebook; "
            f"execute_notebook('probe', Path(sys.argv[1]), {{'out': sys.argv[2], 'sleep': {sleep}}})")
    return subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"{name}.ipynb"),
                             str(tmp_path / f"{name}.json")], env=env, start_new_session=True)


def test_the_kits_interpreter_and_no_leftovers_even_after_a_kill(setting):
    tmp_path, tmp, env = setting
    killed = execute(tmp_path, env, "killed", sleep=120)
    probe = tmp_path / "killed.json"
    deadline = time.time() + 120
    while not probe.exists() and time.time() < deadline and killed.poll() is None:
        time.sleep(0.2)
    kernel = json.loads(probe.read_text())
    try:
        assert kernel["executable"] == sys.executable  # not /bin/false of the user's kernelspecs
        assert [path.name for path in tmp.iterdir()][0].startswith("fslib-kernel-")  # its sockets, while it runs
        os.killpg(killed.pid, signal.SIGKILL)  # no clean-up of its own
        killed.wait(timeout=30)
        left = sorted(path.name for path in tmp.rglob("*"))
        assert any(name.startswith("k-") for name in left) and "kernel.json" in left  # sockets, connection file

        normal = execute(tmp_path, env, "normal", sleep=0)
        assert normal.wait(timeout=180) == 0
        assert json.loads((tmp_path / "normal.json").read_text())["executable"] == sys.executable
        assert list(tmp.iterdir()) == []  # its own folder removed, and the killed run's too
    finally:
        try:
            os.kill(kernel["pid"], signal.SIGKILL)  # the killed run's kernel, if it outlived its parent
        except ProcessLookupError:
            pass


def test_a_kernelspec_for_this_interpreter_when_the_venv_has_none(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "no-venv"))
    (folder,) = kit_kernel_dirs(tmp_path / "scratch")
    spec = json.loads((Path(folder) / "fslib" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and "{connection_file}" in spec["argv"]
