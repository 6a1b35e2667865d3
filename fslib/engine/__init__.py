"""Layer 3, the engine: one run's training and evaluation (stages, methods, surgery, training loop, features,
models, metrics, checkpoints, diagnostics, tracking) and `fslib.engine.runner.run_experiment`. Importing this
package imports nothing: torch loads with the modules that need it."""
