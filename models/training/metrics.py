"""Per-class F1 on labelled windows, and false alarms per 1,000 km as alarm episodes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def f1_per_class(y: I64, pred: I64, classes: tuple[str, ...]) -> dict[str, float]:
    keep = y >= 0
    y, pred = y[keep], pred[keep]
    out: dict[str, float] = {}
    for c, name in enumerate(classes):
        tp = int(np.sum((pred == c) & (y == c)))
        fp = int(np.sum((pred == c) & (y != c)))
        fn = int(np.sum((pred != c) & (y == c)))
        out[name] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return out


def macro_f1_events(f1: dict[str, float]) -> float:
    """Mean F1 over the event classes (``normal`` left out: it would flatter every model)."""
    vals = [v for k, v in f1.items() if k != "normal"]
    return float(np.mean(vals))


def false_alarms_per_1000km(y: I64, pred: I64, trip: I64, index: I64, km: float) -> float:
    """Alarm episodes (runs of adjacent non-normal windows) that touch no labelled event."""
    false = 0
    order = np.lexsort((index, trip))
    y, pred, trip, index = y[order], pred[order], trip[order], index[order]
    i, n = 0, len(y)
    while i < n:
        if pred[i] == 0:
            i += 1
            continue
        j = i
        while (
            j + 1 < n
            and pred[j + 1] != 0
            and trip[j + 1] == trip[i]
            and index[j + 1] == index[j] + 1
        ):
            j += 1
        if np.all(y[i : j + 1] == 0):
            false += 1
        i = j + 1
    return 1000.0 * false / km if km > 0 else 0.0
