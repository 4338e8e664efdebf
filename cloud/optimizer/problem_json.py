"""Our JSON problem format (documented in docs/optimizer.md).

A job or vehicle that fails validation is skipped, logged with its reason and listed in
`LoadedProblem.rejected`; the rest of the problem is still solved.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.optimizer.errors import ModelError, ProblemFormatError
from cloud.optimizer.matrix import ConstantSpeed, EuclideanMatrix, GreatCircleMatrix
from cloud.optimizer.model import Break, Model, ProblemData, Task, TimeWindow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejected:
    kind: str  # "job" or "vehicle"
    id: str
    reason: str


@dataclass(frozen=True)
class LoadedProblem:
    data: ProblemData
    rejected: tuple[Rejected, ...]


def _window(raw: Any) -> TimeWindow:
    if not (isinstance(raw, list | tuple) and len(raw) == 2):
        raise ModelError(f"a time window is [start, end], got {raw!r}")
    end = math.inf if raw[1] is None else float(raw[1])
    return TimeWindow(float(raw[0]), end)


def _windows(raw: Any) -> list[TimeWindow]:
    if raw is None:
        return [TimeWindow()]
    if not isinstance(raw, list):
        raise ModelError("windows must be a list of [start, end]")
    return [_window(w) for w in raw]


def _task(raw: Any) -> Task:
    if not isinstance(raw, dict):
        raise ModelError("a pair's pickup and delivery are objects")
    return Task(
        int(raw["location"]), tuple(_windows(raw.get("windows"))), float(raw.get("service", 0.0))
    )


def _matrix(model: Model, raw: dict[str, Any]) -> ProblemData:
    spec = raw.get("matrix", {"type": "euclidean"})
    kind = spec.get("type", "euclidean")
    if kind == "euclidean":
        return model.data(EuclideanMatrix(float(spec.get("speed", 1.0))))
    if kind == "great_circle":
        speeds = ConstantSpeed(float(spec.get("speed_mps", 30 / 3.6)))
        provider = GreatCircleMatrix(float(spec.get("circuity", 1.3)), speeds)
        return model.data(provider)
    if kind == "explicit":
        return model.data(distances=spec["distances"], durations=spec["durations"])
    raise ProblemFormatError(f"unknown matrix type {kind!r}")


def load_problem(raw: dict[str, Any], name: str = "") -> LoadedProblem:
    """Build problem data from the parsed JSON object."""
    model = Model(str(raw.get("name", name)))
    rejected: list[Rejected] = []
    try:
        for loc in raw["locations"]:
            model.add_location(float(loc[0]), float(loc[1]))
        depots = {}
        for d in raw.get("depots", []):
            depots[str(d["id"])] = model.add_depot(
                str(d["id"]), int(d["location"]), _window(d.get("window", [0, None]))
            )
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ProblemFormatError(f"{name}: bad locations or depots: {err!r}") from err

    def place(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, str):
            return depots[value].location
        return int(value)

    for v in raw.get("vehicles", []):
        vid = str(v.get("id", "?")) if isinstance(v, dict) else "?"
        try:
            start = place(v["start"])
            assert start is not None, "a vehicle needs a start"
            model.add_vehicle(
                vid,
                [int(c) for c in v.get("capacity", [])],
                start=start,
                end=place(v.get("end", v["start"])),
                shift=_window(v.get("shift", [0, None])),
                breaks=[
                    Break(str(b["id"]), _window(b["window"]), float(b["duration"]))
                    for b in v.get("breaks", [])
                ],
                skills=[str(s) for s in v.get("skills", [])],
                fixed_cost=float(v.get("fixed_cost", 0.0)),
                locked=[str(j) for j in v.get("locked", [])],
            )
        except (KeyError, TypeError, ValueError, AssertionError, ModelError) as err:
            rejected.append(Rejected("vehicle", vid, repr(err)))
            log.warning("%s: vehicle %s rejected: %r", name, vid, err)
    for j in raw.get("jobs", []):
        jid = str(j.get("id", "?")) if isinstance(j, dict) else "?"
        try:
            kind = j.get("type", "delivery")
            common: dict[str, Any] = {
                "priority": int(j.get("priority", 0)),
                "penalty": None if j.get("penalty") is None else float(j["penalty"]),
                "skills": [str(s) for s in j.get("skills", [])],
                "allowed_vehicles": [str(s) for s in j.get("vehicles", [])],
            }
            amount = [int(a) for a in j.get("amount", [])]
            if kind == "pair":
                model.add_pair(jid, _task(j["pickup"]), _task(j["delivery"]), amount, **common)
            elif kind in ("delivery", "pickup"):
                add = model.add_delivery if kind == "delivery" else model.add_pickup
                add(
                    jid,
                    int(j["location"]),
                    amount,
                    windows=_windows(j.get("windows")),
                    service=float(j.get("service", 0.0)),
                    **common,
                )
            else:
                raise ModelError(f"unknown job type {kind!r}")
        except (KeyError, TypeError, ValueError, ModelError) as err:
            rejected.append(Rejected("job", jid, repr(err)))
            log.warning("%s: job %s rejected: %r", name, jid, err)
    try:
        data = _matrix(model, raw)
    except (KeyError, TypeError, ValueError) as err:
        raise ProblemFormatError(f"{name}: {err}") from err
    return LoadedProblem(data, tuple(rejected))


def read_problem(path: str | Path) -> LoadedProblem:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ProblemFormatError(f"cannot read {path}: {err}") from err
    if not isinstance(raw, dict):
        raise ProblemFormatError(f"{path}: expected a JSON object")
    return load_problem(raw, path.stem)
