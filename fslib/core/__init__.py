"""Layer 0, the vocabulary every other layer uses: languages, tasks, small file helpers, progress bars, phase
timing and notebook execution. Plain Python: no torch, no datasets."""
