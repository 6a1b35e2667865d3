"""`fslib.results.load_results`, where the README shows it: the run store's (fslib.store.results)."""

from fslib.store.results import load_results

__all__ = ["load_results"]
