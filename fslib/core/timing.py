"""Where a run's time goes: wall seconds per phase (loading data, tokenising, training, evaluating, ...), each
second counted once: a phase entered inside another (an evaluation inside training's epoch-end callback) pauses
the outer one. Written beside the run's results as timings.json; bench/grid_time.py adds them up over a grid."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager


class PhaseTimer:
    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self._stack: list[str] = []
        self._since = time.perf_counter()

    def _charge(self) -> None:
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
        self._since = now

    @contextmanager
    def __call__(self, phase: str):
        self._charge()
        self._stack.append(phase)
        try:
            yield
        finally:
            self._charge()
            self._stack.pop()

    def as_dict(self) -> dict[str, float]:
        return {phase: round(seconds, 3) for phase, seconds in sorted(self.seconds.items())}
