"""Score predictions against labels: per-class F1, headline macro F1, false alarms per 1,000 km."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from models.training.datasets import WindowSet
from models.training.metrics import f1_per_class, false_alarms_per_1000km, macro_f1_events

I64 = npt.NDArray[np.int64]


def score(ws: WindowSet, pred: I64, classes: tuple[str, ...]) -> dict[str, Any]:
    f1 = f1_per_class(ws.y, pred, classes)
    return {
        "macro_f1_events": round(macro_f1_events(f1), 4),
        "f1": {k: round(v, 4) for k, v in f1.items()},
        "false_alarms_per_1000km": round(
            false_alarms_per_1000km(ws.y, pred, ws.trip, ws.index, ws.distance_km), 2
        ),
    }


def describe(ws: WindowSet, classes: tuple[str, ...]) -> dict[str, Any]:
    counts = np.bincount(ws.y[ws.y >= 0], minlength=len(classes))
    return {
        "windows": len(ws.y),
        "ignored_windows": int(np.sum(ws.y < 0)),
        "windows_per_class": {c: int(n) for c, n in zip(classes, counts, strict=True)},
        "distance_km": round(ws.distance_km, 1),
        "trips": len(np.unique(ws.trip)),
    }
