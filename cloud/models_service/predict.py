"""Turn requests into model inputs and outputs into answers (seconds, orders per hour)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import h3
import numpy as np

from cloud.models_service.demand_features import MIN_HISTORY, features_for_hour
from cloud.models_service.errors import InputError
from cloud.models_service.eta_features import Leg, check_leg, features
from cloud.models_service.loaded import LoadedModel


@dataclass(frozen=True)
class LegAnswer:
    depart_s: float
    travel_s: float
    arrive_s: float
    dwell_s: float
    leave_s: float
    reference_travel_s: float


@dataclass(frozen=True)
class LegQuery:
    origin_lat: float
    origin_lon: float
    dest_lat: float
    dest_lon: float
    depart_s: float | None  # None: when the previous stop is left (the first: the route's start)


def predict_eta(model: LoadedModel, start_s: float, legs: list[LegQuery]) -> list[LegAnswer]:
    """Legs in order; each leaves at its own time or when the previous stop's dwell ends.

    Legs that all carry their own departure are predicted in one onnxruntime call; otherwise
    one call per leg, since a leg's departure (a feature) is the previous leg's predicted end."""
    ref = model.card["reference"]
    circuity, speed = float(ref["circuity"]), float(ref["speed_mps"])
    floor_s, unit_s = float(ref["floor_s"]), float(ref["dwell_unit_s"])

    def answers(batch: list[Leg]) -> list[LegAnswer]:
        for i, leg in enumerate(batch):
            try:
                check_leg(leg)
            except ValueError as err:
                raise InputError("bad_leg", f"leg {i}: {err}") from err
        x = features(batch)
        t_out, d_out = (np.asarray(o, np.float64).ravel() for o in model.run(x.astype(np.float32)))
        out = []
        for leg, d, t, w in zip(batch, x[:, 0], t_out, d_out, strict=True):
            reference = float(d) * circuity / speed
            travel = max(reference, floor_s) * math.exp(float(t))
            dwell = unit_s * math.exp(float(w))
            out.append(
                LegAnswer(
                    depart_s=leg.depart_s,
                    travel_s=travel,
                    arrive_s=leg.depart_s + travel,
                    dwell_s=dwell,
                    leave_s=leg.depart_s + travel + dwell,
                    reference_travel_s=reference,
                )
            )
        return out

    def leg_at(q: LegQuery, depart: float) -> Leg:
        return Leg(q.origin_lat, q.origin_lon, q.dest_lat, q.dest_lon, depart)

    if all(q.depart_s is not None for q in legs):
        return answers([leg_at(q, q.depart_s) for q in legs if q.depart_s is not None])
    clock, result = start_s, []
    for i, q in enumerate(legs):
        try:
            (a,) = answers([leg_at(q, clock if q.depart_s is None else q.depart_s)])
        except InputError as err:
            raise InputError(err.reason, err.detail.replace("leg 0", f"leg {i}", 1)) from err
        result.append(a)
        clock = a.leave_s
    return result


@dataclass(frozen=True)
class CellQuery:
    cell: str
    hour_of_day: int  # local, of the hour forecast
    day_of_week: int  # 0 = Monday
    history: list[float]  # hourly order counts before that hour, oldest first


def predict_demand(model: LoadedModel, cells: list[CellQuery]) -> list[float]:
    """Expected orders in the hour, per cell (clipped at 0), one model call for all cells."""
    if not cells:
        return []
    rows = []
    for i, c in enumerate(cells):
        if not h3.is_valid_cell(c.cell):
            raise InputError("bad_cell", f"cell {i}: {c.cell!r} is not an H3 cell index")
        hist = np.asarray(c.history, dtype=np.float64)
        if len(hist) < MIN_HISTORY:
            raise InputError(
                "short_history", f"cell {i}: {len(hist)} hours of history; need {MIN_HISTORY}"
            )
        if not np.all(np.isfinite(hist)) or np.any(hist < 0):
            raise InputError("bad_history", f"cell {i}: counts must be finite and >= 0")
        rows.append(features_for_hour(hist, c.hour_of_day, c.day_of_week))
    (pred,) = model.run(np.stack(rows).astype(np.float32))
    return [max(0.0, float(v)) for v in np.asarray(pred).ravel()]
