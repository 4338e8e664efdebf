"""Legs (a drive to a stop, then the dwell there) as model inputs and targets, from any source.

The simulator and the database give the same `LegRecord`s; `features` and `targets` turn them
into what the model is fitted on. Targets are ratios, so the float32 ONNX output stays small:

- travel: log(travel_s / reference_s), reference_s = max(60 s, the optimizer's estimate with its
  defaults: great-circle x 1.3 at 30 km/h); prediction = reference_s x exp(output);
- dwell: log(dwell_s / 60 s); prediction = 60 s x exp(output).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cloud.models_service.eta_features import FEATURE_NAMES, Leg, features
from models.eta.fleet import SimLeg

F64 = npt.NDArray[np.float64]
REF_CIRCUITY = 1.3  # the optimizer's default road circuity (cloud/optimizer/dispatch/planner.py)
REF_SPEED_MPS = 30 / 3.6  # and its default speed
REF_FLOOR_S = 60.0
DWELL_UNIT_S = 60.0


@dataclass(frozen=True)
class LegRecord:
    """One observed leg. ``dwell_s`` is NaN where the stay at the destination is unknown
    (the last trip of a day: the vehicle went home)."""

    vehicle: str
    route: str
    origin_lat: float
    origin_lon: float
    dest_lat: float
    dest_lon: float
    depart_s: float
    travel_s: float
    dwell_s: float

    @property
    def leg(self) -> Leg:
        return Leg(self.origin_lat, self.origin_lon, self.dest_lat, self.dest_lon, self.depart_s)


def reference_s(x: F64) -> F64:
    """The reference travel time from the feature matrix (great-circle metres in column 0)."""
    ref: F64 = np.maximum(x[:, 0] * REF_CIRCUITY / REF_SPEED_MPS, REF_FLOOR_S)
    return ref


def feature_matrix(records: Sequence[LegRecord]) -> F64:
    return features([r.leg for r in records])


def targets(records: Sequence[LegRecord], x: F64) -> tuple[F64, F64]:
    """(travel log-ratio, dwell log-ratio; NaN where the dwell is unknown)."""
    travel = np.array([r.travel_s for r in records], dtype=np.float64)
    dwell = np.array([r.dwell_s for r in records], dtype=np.float64)
    return np.log(travel / reference_s(x)), np.log(dwell / DWELL_UNIT_S)


def to_seconds(x: F64, travel_out: F64, dwell_out: F64) -> tuple[F64, F64]:
    """Model outputs back to (travel seconds, dwell seconds)."""
    return reference_s(x) * np.exp(travel_out), DWELL_UNIT_S * np.exp(dwell_out)


def from_sim(legs: Sequence[SimLeg]) -> list[LegRecord]:
    """Simulated legs as records."""
    return [
        LegRecord(
            vehicle=leg.vehicle,
            route=f"{leg.vehicle}/{leg.route}",
            origin_lat=leg.origin_lat,
            origin_lon=leg.origin_lon,
            dest_lat=leg.dest_lat,
            dest_lon=leg.dest_lon,
            depart_s=leg.depart_s,
            travel_s=leg.travel_s,
            dwell_s=leg.dwell_s,
        )
        for leg in legs
    ]


def assert_finite_features(x: F64) -> None:
    if x.shape[1] != len(FEATURE_NAMES) or not np.all(np.isfinite(x)):
        raise ValueError("feature matrix has the wrong width or non-finite values")


def is_valid_record(r: LegRecord) -> str | None:
    """The reason a record cannot be learned from, or None."""
    vals = (r.origin_lat, r.origin_lon, r.dest_lat, r.dest_lon, r.depart_s, r.travel_s)
    if not all(math.isfinite(v) for v in vals):
        return "not_finite"
    if not (-90 <= r.origin_lat <= 90 and -90 <= r.dest_lat <= 90):
        return "lat_out_of_range"
    if not (-180 <= r.origin_lon <= 180 and -180 <= r.dest_lon <= 180):
        return "lon_out_of_range"
    if r.travel_s <= 0:
        return "duration_not_positive"
    return None
