"""A worker SIGKILLed in the middle of a run leaves a failure record at once, by the thread that saw it die, not
when the batch collects the outcomes: a batch stopped right after (SIGTERM) would never get there, leaving the
run `pending` with no word of why."""

import json
import os
import signal
import threading
import time

from test_batch_safety import planned  # noqa: F401 (a fixture)

from fslib.batch.executors import LocalExecutor, job_alive
from fslib.store.config import run_dir
from fslib.store.ledger import RUN_LOG, Job, failure, run_status


def test_a_killed_worker_leaves_its_failure_record_before_the_batch_sees_the_outcome(planned):  # noqa: F811
    folder = run_dir(planned)
    job = Job("run", planned.to_dict(), folder, folder / RUN_LOG, planned.run_id)
    marker = folder / "worker.running.json"

    def kill_the_worker() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(json.loads(marker.read_text())["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    outcome = LocalExecutor(jobs=1, gpus=[])._start(job, 0)  # what one slot's thread does, without the batch
    killer.join()
    assert not outcome.ok and f"worker exit status {-signal.SIGKILL}" in outcome.error
    assert failure(folder)["error"] == outcome.error and failure(folder)["config_hash"] == planned.config_hash
    assert run_status(planned, job_alive) == "failed"
