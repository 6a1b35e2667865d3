"""Layer 2, the run store: a run's configuration (its identity: config hash and folder), its result rows, and the
state of run and source-model folders on disk (fslib.store.ledger). No torch and no datasets: `fslib status`
and batch planning read it."""
