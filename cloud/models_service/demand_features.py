"""Features for the next hour's demand in a cell, from history known at forecast time.

Used both by training (models/demand) and by the service, so the model sees the numbers it was
fitted on. numpy only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
WEEK = 168
MIN_HISTORY = 4 * WEEK  # hours of history a forecast needs

FEATURE_NAMES: tuple[str, ...] = (
    "hour_of_day",
    "day_of_week",
    "lag_1h",
    "lag_2h",
    "lag_24h",
    "lag_168h",
    "same_hour_mean_4w",
    "last_24h_mean",
    "last_3h_mean",
    "cell_mean_4w",
    "ratio_24h_vs_last_week",
    "same_hour_mean_4w_x_ratio",
)
FEATURE_UNITS: dict[str, str] = {
    "hour_of_day": "hour 0-23 (local)",
    "day_of_week": "0=Monday",
    "ratio_24h_vs_last_week": "ratio",
    "same_hour_mean_4w_x_ratio": "orders/hour",
    **dict.fromkeys(FEATURE_NAMES[2:10], "orders/hour"),
}


def features(counts: F64, t: int, start_weekday: int = 0) -> F32:
    """(cells, n_features) for forecasting hour ``t`` from ``counts[:t]`` (hours, cells)."""
    if t < MIN_HISTORY:
        raise ValueError(f"need {MIN_HISTORY} hours of history, got {t}")
    h = counts
    n_c = h.shape[1]
    same = h[[t - WEEK * k for k in (1, 2, 3, 4)]].mean(0)
    last24 = h[t - 24 : t].mean(0)
    lastweek24 = h[t - WEEK - 24 : t - WEEK].mean(0)
    ratio = (last24 + 0.5) / (lastweek24 + 0.5)
    cols = [
        np.full(n_c, t % 24),
        np.full(n_c, ((t // 24) + start_weekday) % 7),
        h[t - 1],
        h[t - 2],
        h[t - 24],
        h[t - WEEK],
        same,
        last24,
        h[t - 3 : t].mean(0),
        h[t - 4 * WEEK : t].mean(0),
        ratio,
        same * ratio,
    ]
    return np.stack(cols, axis=1).astype(np.float32)


def features_for_hour(history: F64, hour_of_day: int, day_of_week: int) -> F32:
    """One cell's features for the hour after ``history`` (hourly counts, oldest first, at least
    `MIN_HISTORY` long), which starts at ``hour_of_day`` (local) on ``day_of_week`` (0 = Monday).

    Pads the history in front so that `features`' own hour and weekday arithmetic lands on the
    requested ones: the very function training used, not a copy of it."""
    if history.ndim != 1 or len(history) < MIN_HISTORY:
        raise ValueError(f"need {MIN_HISTORY} hours of history")
    recent = history[-MIN_HISTORY:]
    pad = (hour_of_day - MIN_HISTORY) % 24
    t = pad + MIN_HISTORY
    counts = np.concatenate([np.zeros(pad), recent])[:, None]
    row: F32 = features(counts, t, (day_of_week - t // 24) % 7)[0]
    return row
