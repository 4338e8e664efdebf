"""Reader for Solomon VRPTW text files (vehicle count and capacity, then customer rows)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cloud.optimizer.errors import ProblemFormatError
from cloud.optimizer.matrix import EuclideanMatrix
from cloud.optimizer.model import Model, ProblemData, TimeWindow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Customer:
    number: int
    x: float
    y: float
    demand: int
    ready: float
    due: float
    service: float


@dataclass(frozen=True)
class SolomonInstance:
    name: str
    vehicles: int
    capacity: int
    depot: Customer
    customers: tuple[Customer, ...]
    skipped_lines: int = 0


def parse_solomon(text: str, name: str = "") -> SolomonInstance:
    """Parse; bad customer rows are counted, logged and skipped, never fatal."""
    lines = [ln.split() for ln in text.splitlines()]
    vehicles = capacity = None
    vehicle_line = -1
    rows: list[Customer] = []
    skipped = 0
    for i, tok in enumerate(lines):
        if tok[:2] == ["NUMBER", "CAPACITY"]:
            vehicle_line = next((k for k in range(i + 1, len(lines)) if lines[k]), -1)
            try:
                vehicles, capacity = (int(t) for t in lines[vehicle_line])
            except (IndexError, ValueError) as err:
                raise ProblemFormatError(f"{name}: bad vehicle line after line {i + 1}") from err
        elif i != vehicle_line and vehicles is not None and tok and tok[0][:1].isdigit():
            try:
                if len(tok) != 7:
                    raise ValueError(f"{len(tok)} fields, expected 7")
                n, x, y, q, ready, due, service = tok
                row = Customer(
                    int(n), float(x), float(y), int(float(q)), float(ready), float(due),
                    float(service),
                )  # fmt: skip
                if row.demand < 0 or row.ready > row.due or row.service < 0:
                    raise ValueError("negative demand or service, or empty window")
                rows.append(row)
            except ValueError as err:
                skipped += 1
                log.warning("%s: line %d skipped (%s): %s", name, i + 1, err, " ".join(tok))
    if vehicles is None or capacity is None:
        raise ProblemFormatError(f"{name}: no 'NUMBER CAPACITY' vehicle section")
    depots = [r for r in rows if r.number == 0]
    if len(depots) != 1:
        raise ProblemFormatError(f"{name}: expected one depot row numbered 0")
    customers = tuple(r for r in rows if r.number != 0)
    if len({c.number for c in customers}) != len(customers):
        raise ProblemFormatError(f"{name}: duplicate customer numbers")
    return SolomonInstance(name, vehicles, capacity, depots[0], customers, skipped)


def read_solomon(path: str | Path) -> SolomonInstance:
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise ProblemFormatError(f"cannot read {path}: {err}") from err
    return parse_solomon(text, path.stem)


def to_problem(inst: SolomonInstance) -> ProblemData:
    """Job ids are the customer numbers; travel time = unrounded Euclidean distance."""
    model = Model(inst.name)
    depot_loc = model.add_location(inst.depot.x, inst.depot.y, "0")
    horizon = TimeWindow(inst.depot.ready, inst.depot.due)
    depot = model.add_depot("0", depot_loc, horizon)
    for k in range(inst.vehicles):
        model.add_vehicle(f"v{k + 1}", [inst.capacity], start=depot, end=depot, shift=horizon)
    for c in inst.customers:
        loc = model.add_location(c.x, c.y, str(c.number))
        model.add_delivery(
            str(c.number), loc, [c.demand], windows=[TimeWindow(c.ready, c.due)], service=c.service
        )
    return model.data(EuclideanMatrix())
