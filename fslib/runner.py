"""`fslib.runner.run_experiment`, where the README shows it: the engine's (fslib.engine.runner)."""

from fslib.engine.runner import run_dir, run_experiment

__all__ = ["run_dir", "run_experiment"]
