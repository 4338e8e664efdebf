"""F1 and false-alarm counting on hand-made labels."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.metrics import f1_per_class, false_alarms_per_1000km, macro_f1_events

CLASSES = ("normal", "a", "b")


def test_f1_ignores_grazing_windows() -> None:
    y = np.array([0, 1, 1, -1, 2])
    pred = np.array([0, 1, 0, 2, 2])
    f1 = f1_per_class(y, pred, CLASSES)
    assert f1["a"] == pytest.approx(2 / 3)
    assert f1["b"] == 1.0
    assert macro_f1_events(f1) == pytest.approx((2 / 3 + 1) / 2)


def test_false_alarm_episodes_merge_adjacent_windows() -> None:
    y = np.array([0, 0, 0, 0, 1, 0, 0])
    pred = np.array([1, 1, 0, 2, 1, 0, 1])
    trip = np.zeros(7, dtype=np.int64)
    index = np.arange(7)
    # episodes: [0,1] false, [3,4] touches an event, [6] false
    assert false_alarms_per_1000km(y, pred, trip, index, km=2.0) == pytest.approx(1000.0)


def test_episodes_do_not_cross_trips() -> None:
    y = np.zeros(2, dtype=np.int64)
    pred = np.ones(2, dtype=np.int64)
    assert false_alarms_per_1000km(y, pred, np.array([0, 1]), np.array([5, 6]), 1000.0) == 2.0
