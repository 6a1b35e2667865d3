"""The state of run folders and source-model folders on disk, written only by the fslib.store modules named here;
their names, re-exported under one (`fslib.store.ledger`) for the notebooks and tools that read them.

A run folder (`fslib.store.config.run_dir`: `runs/<task>/<label>/k<K>/seed<S>[/<targets>]/<model>-<config hash>`)
holds:

    config.json             the run's RunConfig
    <table>.csv             extra tables (surgery.csv, gradient_similarity.csv, training.csv)
    predictions.jsonl.gz    the final test predictions, what the task notebooks' views read
    provenance.json         what produced the run: kit commit, libraries, device, data and model checksums
    results.csv             the rows
    manifest.json           the size and checksum of each file above and the row count: a folder whose files match
                            it is a finished run; written last
    FAILED.json             why the last attempt failed, where to look, and the config hash it ran with
    worker.log              a batch job's output; `worker.running.json` beside it while the job is in flight

A finished run's files are written as one set (`write_run`, fslib.store.run_files): every file to a temporary name
first, then renamed into place, the manifest last; the set it replaces is kept beside it (`.<name>.previous`) until
the next one, so that an attempt that fails after writing its set can put the old one back (`discard_results`). Old
results are never deleted by a run that fails.

A source-model folder (`source_model_folder`, fslib.store.source_models) holds the model and tokenizer and
`source_training.json`, written last, so its presence marks a finished source model.

A run's status (`run_status`, fslib.store.status) is read from these files alone: done, running, failed, pending,
changed (results of another configuration: to run again) or corrupt (result files that do not match their manifest,
or cannot be read: to run again; `corruption` says which file and how). The jobs of a batch and their running
markers are in fslib.store.jobs, failure records in fslib.store.failures, run folders of the layout before the
config hash in fslib.store.migration.
"""

from __future__ import annotations

from fslib.store.failures import FAILED_FILE, clear_failure, failure, record_failure
from fslib.store.jobs import (
    RUN_LOG,
    Job,
    Outcome,
    clear_running,
    mark_running,
    running_marker,
    running_record,
)
from fslib.store.migration import legacy_notice, legacy_run_folders, migrate_runs
from fslib.store.run_files import (
    PREDICTIONS_FILE,
    PREVIOUS,
    TIMINGS_FILE,
    corruption,
    discard_results,
    read_predictions,
    result_set,
    write_run,
    write_timings,
)
from fslib.store.source_models import (
    SOURCE_RECORD,
    read_source_record,
    source_model_done,
    source_model_folder,
    source_model_identity,
    write_source_record,
)
from fslib.store.status import STATUSES, run_status

__all__ = [
    "FAILED_FILE", "Job", "Outcome", "PREDICTIONS_FILE", "PREVIOUS", "RUN_LOG", "SOURCE_RECORD", "STATUSES",
    "TIMINGS_FILE", "clear_failure", "clear_running", "corruption", "discard_results", "failure", "legacy_notice",
    "legacy_run_folders", "mark_running", "migrate_runs", "read_predictions", "read_source_record",
    "record_failure", "result_set", "run_status", "running_marker", "running_record", "source_model_done",
    "source_model_folder", "source_model_identity", "write_run", "write_source_record", "write_timings",
]
