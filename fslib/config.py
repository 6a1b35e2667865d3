"""`fslib.config.RunConfig`, where the README shows it: the run store's (fslib.store.config)."""

from fslib.store.config import RunConfig, run_dir

__all__ = ["RunConfig", "run_dir"]
