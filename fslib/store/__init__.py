"""Layer 2, the run store: a run's configuration (its identity: config hash and folder), its result rows, and the
state of run and source-model folders on disk, one module per job: `jobs` (a batch's jobs and running markers),
`run_files` (a finished run's file set), `failures`, `status`, `source_models`, `migration` (the old layout);
`ledger` re-exports their names. No torch and no datasets: `fslib status`
and batch planning read it."""
