"""`fslib batch --executor slurm` against a real one-node Slurm (see conftest's `slurm_cluster`): a small mini
grid arrives in full with its report; a job cancelled on purpose is reported failed with its log and no rows,
and the next batch on the same file completes it."""

import json
import subprocess
import sys
import time

import pytest
import yaml

from fslib.store.results import load_results

pytestmark = pytest.mark.slurm


def test_grid_on_slurm_and_a_cancelled_job_is_run_again(slurm_cluster, mini_dir, tiny_model, tmp_path):
    output_dir = tmp_path / "outputs"
    params = tmp_path / "slurm.yaml"
    params.write_text(yaml.safe_dump({
        "defaults": {"model": str(tiny_model), "source": "xtreme", "data_dir": str(mini_dir),
                     "output_dir": str(output_dir), "epochs": 1, "learning_rate": 1.0e-3,
                     "max_train_examples": 100, "max_eval_examples": 30},
        "grids": [{"task": task, "methods": ["ord-FS", "gradient-co-train"], "k": [1], "seeds": [1, 2],
                   "languages": ["en", "qa", "qc"]} for task in ("ner", "pos")],
        "cluster": {"partition": "debug", "cpus_per_task": 1, "mem_gb": 2, "timeout_min": 15},
    }))
    batch = subprocess.Popen([sys.executable, "-m", "fslib.cli", "batch", str(params), "--executor", "slurm"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # kill the first run job that Slurm is running (the source models went first, as their own array)
    runs, cancelled, deadline = output_dir / "runs", None, time.time() + 600
    while cancelled is None and time.time() < deadline and batch.poll() is None:
        for marker in sorted(runs.rglob("worker.running.json")) if runs.exists() else []:
            job_id = json.loads(marker.read_text())["job_id"]
            state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
            if state.stdout.strip() == "RUNNING":
                subprocess.run(["scancel", job_id], check=True)
                cancelled = marker.parent
                break
        time.sleep(1)
    output, _ = batch.communicate(timeout=900)
    assert cancelled is not None, output
    assert batch.returncode == 1, output  # one run failed

    failure = json.loads((cancelled / "FAILED.json").read_text())
    assert "CANCELLED" in failure["error"] and "log:" in failure["error"], failure
    assert not (cancelled / "results.csv").exists()
    status = subprocess.run([sys.executable, "-m", "fslib.cli", "status", str(params)], capture_output=True,
                            text=True, check=True).stdout
    assert "8 runs: 7 done, 1 failed" in status, status
    assert (output_dir / "reports" / "index.html").exists()

    again = subprocess.run([sys.executable, "-m", "fslib.cli", "batch", str(params), "--executor", "slurm"],
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "8 runs: 7 done, 1 pending" in again.stdout or "7 done, 1 failed" in again.stdout
    results = load_results(runs)
    assert results.run_id.nunique() == 8
    assert set(results[results.split == "test"].lang) == {"en", "qa", "qc"}
    assert (cancelled / "results.csv").exists() and not (cancelled / "FAILED.json").exists()
    index = (output_dir / "reports" / "index.html").read_text()
    assert "main_results.html" in index and "language_benefit_ner.html" in index
