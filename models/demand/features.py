"""Features for the next hour's demand in a cell, from history known at forecast time."""

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


def dataset(counts: F64, hours: range, start_weekday: int = 0) -> tuple[F32, F64]:
    """Features and targets for every cell at each forecast hour in ``hours``."""
    xs = [features(counts, t, start_weekday) for t in hours]
    ys = [counts[t] for t in hours]
    return np.concatenate(xs), np.concatenate(ys)
