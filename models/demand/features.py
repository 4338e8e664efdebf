"""Features for the next hour's demand in a cell, from history known at forecast time.

The feature code itself lives with the service that uses it (cloud/models_service), as the edge
models' features live with the agent: training imports it, so both compute the same numbers.
"""

from __future__ import annotations

import numpy as np

from cloud.models_service.demand_features import (
    F32,
    F64,
    FEATURE_NAMES,
    FEATURE_UNITS,
    MIN_HISTORY,
    WEEK,
    features,
)

__all__ = ["FEATURE_NAMES", "FEATURE_UNITS", "MIN_HISTORY", "WEEK", "dataset", "features"]


def dataset(counts: F64, hours: range, start_weekday: int = 0) -> tuple[F32, F64]:
    """Features and targets for every cell at each forecast hour in ``hours``."""
    xs = [features(counts, t, start_weekday) for t in hours]
    ys = [counts[t] for t in hours]
    return np.concatenate(xs), np.concatenate(ys)
