"""Where a run's time goes: the phase timer counts each second once, and the column helpers read what they say."""

from datasets import Dataset

import fslib.core.timing
from fslib.core.timing import PhaseTimer
from fslib.engine.features import column, input_lengths


def test_nested_phase_pauses_the_outer_one(monkeypatch):
    clock = iter([0.0, 1.0, 3.0, 7.0, 8.0, 20.0, 21.0])  # perf_counter readings, one per enter/exit
    monkeypatch.setattr(fslib.core.timing.time, "perf_counter", lambda: next(clock))
    timer = PhaseTimer()  # 0
    with timer("train"):  # 1
        with timer("evaluate"):  # 3: train ran 1 -> 3
            pass  # 7: evaluate ran 3 -> 7
        pass  # 8: train again 7 -> 8
    with timer("train"):  # 20: nothing charged between phases
        pass  # 21
    assert timer.as_dict() == {"evaluate": 4.0, "train": 4.0}


def test_columns_and_lengths_follow_a_selection():
    data = Dataset.from_dict({"input_ids": [[1], [1, 2], [1, 2, 3], [4, 5, 6, 7]], "lang": ["a", "b", "c", "d"]})
    chosen = data.select([3, 1])  # an indices mapping: what the Arrow table holds is not what the dataset shows
    assert input_lengths(chosen) == [4, 2]
    assert column(chosen, "lang") == ["d", "b"] and isinstance(column(chosen, "lang"), list)
