"""PyVRP (iterated local search): strongest on classic VRPTW; a subset of our constraints.

Pairs map to PyVRP shipments; a visit with several time windows maps to one client per window
in a mutually exclusive group (at most one of them is visited; exactly one if mandatory).
Jobs that no vehicle could serve even alone are kept out of PyVRP's model, so they cannot
stall its search for a feasible plan; they come back as unassigned with their reason.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from pyvrp import (
    Client,
    ClientGroup,
    Depot,
    Location,
    ProblemData,
    Shipment,
    VehicleType,
    solve,
)
from pyvrp import SolveParams as PyvrpSolveParams
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.search import NeighbourhoodParams
from pyvrp.stop import MultipleCriteria as PyvrpMultiple

from cloud.optimizer.engines.common import HORIZON_CAP, SUPPORT, Scaler
from cloud.optimizer.errors import EngineError
from cloud.optimizer.model import JobKind
from cloud.optimizer.model import ProblemData as OurData
from cloud.optimizer.params import SolveParams
from cloud.optimizer.result import Answer, Reason
from cloud.optimizer.schedule import depot_window_start, diagnose, effective_penalty
from cloud.optimizer.stop import Deadline, StoppingCriterion

log = logging.getLogger(__name__)

INT_MAX = np.iinfo(np.int64).max
IMPOSSIBLE = {Reason.NO_VEHICLE_WITH_SKILLS, Reason.OVER_CAPACITY, Reason.UNREACHABLE_IN_TIME}
# PyVRP's penalties per unit of excess load share one range with those per unit of time
# warp. On the Solomon instances (scaled by 1000) one unit of the median amount weighs at least
# 1/4000 of the median arc's cost, and PyVRP did best left alone there (measured); where the
# units make a load unit far lighter (kg or litres against metres x 1000) amounts and capacities
# are multiplied up to that ratio, else overloading is nearly free and PyVRP can end infeasible.
LOAD_TO_ARC = 1 / 4000
LOAD_CAP = 2**40  # scaled capacities stay far from overflow in penalty arithmetic
INFEASIBLE_COST = 2**62  # PyVRP reports an infeasible best as the largest cost


def load_factors(data: OurData, arc_costs: np.ndarray) -> list[int]:
    """Per dimension, an integer multiplier for amounts and capacities (exact: both scale)."""
    positive = arc_costs[arc_costs > 0]
    if positive.size == 0:
        return [1] * data.dimensions
    arc = float(np.median(positive))
    factors = []
    for d in range(data.dimensions):
        amounts = [job.amount[d] for job in data.jobs if job.amount[d] > 0]
        caps = max((v.capacity[d] for v in data.vehicles), default=0)
        if not amounts or caps <= 0:
            factors.append(1)
            continue
        k = max(1, int(LOAD_TO_ARC * arc / statistics.median(amounts)))
        factors.append(max(1, min(k, LOAD_CAP // caps)))
    return factors


@dataclass
class GiveUp:
    """Stops PyVRP once `at` (wall time) has passed without any feasible plan."""

    at: float

    def __call__(self, best_cost: float) -> bool:
        return best_cost >= INFEASIBLE_COST and time.time() >= self.at


def _cap(x: int) -> int:
    return INT_MAX if x >= HORIZON_CAP else x


@dataclass(frozen=True)
class _TypeKey:
    """Vehicles equal in all of these share one PyVRP vehicle type."""

    capacity: tuple[int, ...]
    start: int
    end: int
    open_at: float
    close: float
    fixed_cost: float


@dataclass
class Built:
    """PyVRP's data and the maps back to our indices."""

    problem: ProblemData | None = None
    order: list[int] = field(default_factory=list)  # our vehicle per PyVRP vehicle, type order
    client_job: list[int] = field(default_factory=list)  # PyVRP client -> our job
    shipment_job: list[int] = field(default_factory=list)  # PyVRP shipment -> our job


class PyvrpEngine:
    name = "pyvrp"
    supported = SUPPORT["pyvrp"]

    def build(self, data: OurData, params: SolveParams) -> Built:
        sc = Scaler(data, params)
        terminals = sorted(
            {v.start for v in data.vehicles} | {v.end for v in data.vehicles if v.end is not None}
        )
        depot_of = {loc: i for i, loc in enumerate(terminals)}
        locs = list(terminals)
        depots = []
        for loc in terminals:
            opens = [d.window for d in data.depots if d.location == loc]
            early = max([w.start for w in opens], default=0.0)
            late = min([w.end for w in opens], default=math.inf)
            depots.append(Depot(depot_of[loc], sc.up(early), _cap(sc.down(late))))
        built = Built()
        factors = (
            load_factors(data, sc.cost) if params.pyvrp.load_scaling else [1] * data.dimensions
        )

        def load(amount: tuple[int, ...]) -> list[int]:
            return [a * k for a, k in zip(amount, factors, strict=True)]

        clients: list[Client] = []
        groups: list[ClientGroup] = []
        shipments: list[Shipment] = []
        zero = [0] * data.dimensions
        for j, job in enumerate(data.jobs):
            if diagnose(data, job, params) in IMPOSSIBLE:
                continue
            optional = not job.mandatory
            prize = sc.money(effective_penalty(job, params, data)) if optional else 0
            if job.kind is JobKind.PAIR:
                pick, drop = job.tasks
                locs.extend((pick.location, drop.location))
                shipments.append(
                    Shipment(
                        pickup_location=len(locs) - 2, delivery_location=len(locs) - 1,
                        pickup_tw_early=sc.up(pick.windows[0].start),
                        pickup_tw_late=_cap(sc.down(pick.windows[0].end)),
                        pickup_service_duration=sc.up(pick.service),
                        delivery_tw_early=sc.up(drop.windows[0].start),
                        delivery_tw_late=_cap(sc.down(drop.windows[0].end)),
                        delivery_service_duration=sc.up(drop.service),
                        amount=load(job.amount), prize=prize, required=not optional, name=job.id,
                    )
                )  # fmt: skip
                built.shipment_job.append(j)
                continue
            task = job.tasks[0]
            locs.append(task.location)
            group = None
            if len(task.windows) > 1:
                group = len(groups)
                groups.append(ClientGroup(required=not optional, name=job.id))
            for window in task.windows:
                if group is not None:
                    groups[group].add_client(len(clients))
                clients.append(
                    Client(
                        location=len(locs) - 1,
                        delivery=load(job.amount) if job.kind is JobKind.DELIVERY else zero,
                        pickup=load(job.amount) if job.kind is JobKind.PICKUP else zero,
                        service_duration=sc.up(task.service),
                        tw_early=sc.up(window.start), tw_late=_cap(sc.down(window.end)),
                        prize=prize, required=not optional and group is None,
                        group=group, name=job.id,
                    )
                )  # fmt: skip
                built.client_job.append(j)
        by_type: dict[_TypeKey, list[int]] = defaultdict(list)
        for v, veh in enumerate(data.vehicles):
            open_at = max(veh.shift.start, depot_window_start(data, veh.start))
            end = veh.start if veh.end is None else veh.end  # open routes never get here
            key = _TypeKey(veh.capacity, veh.start, end, open_at, veh.shift.end, veh.fixed_cost)
            by_type[key].append(v)
        types = []
        for key, members in by_type.items():
            types.append(
                VehicleType(
                    num_available=len(members),
                    capacity=load(key.capacity),
                    start_depot=depot_of[key.start],
                    end_depot=depot_of[key.end],
                    fixed_cost=sc.money(key.fixed_cost),
                    tw_early=sc.up(key.open_at),
                    tw_late=_cap(sc.down(key.close)),
                )
            )
            built.order.extend(members)
        idx = np.array(locs)
        dist = sc.cost[np.ix_(idx, idx)].copy()
        dur = sc.travel[np.ix_(idx, idx)].copy()
        locations = [Location(data.locations[i].x, data.locations[i].y) for i in locs]
        built.problem = ProblemData(
            locations, clients, depots, types, [dist], [dur], groups, shipments
        )
        return built

    def solve(
        self,
        data: OurData,
        params: SolveParams,
        stop: StoppingCriterion,
        deadline: float,
        initial: Answer | None = None,
    ) -> Answer | None:
        """Cold start only: no other engine runs before PyVRP in our plans.

        Returns None when PyVRP found no feasible plan (it gives up early, at
        `give_up_share` of the budget, so that the next engine has time to try).
        """
        if any(v.end is None for v in data.vehicles):
            raise EngineError("pyvrp: open routes are not supported")
        built = self.build(data, params)
        if not built.client_job and not built.shipment_job:
            return Answer("pyvrp", tuple(() for _ in data.vehicles))
        assert built.problem is not None
        started = time.time()
        give_up = GiveUp(started + (deadline - started) * params.pyvrp.give_up_share)
        rule = PyvrpMultiple([Deadline(deadline), stop, give_up])
        settings = PyvrpSolveParams(
            neighbourhood=NeighbourhoodParams(num_neighbours=params.pyvrp.num_neighbours)
        )
        with warnings.catch_warnings():
            # "penalty at its maximum": expected when no feasible plan exists; handled below.
            warnings.simplefilter("ignore", PenaltyBoundWarning)
            result = solve(
                built.problem, stop=rule, seed=params.seed, collect_stats=False, params=settings
            )
        if not result.is_feasible():
            log.info("pyvrp found no feasible plan in %.1f s", time.time() - started)
            return None
        routes: list[tuple[tuple[int, int], ...]] = [() for _ in data.vehicles]
        used: dict[int, int] = defaultdict(int)
        types = built.problem.vehicle_types()
        offsets = np.cumsum([0] + [t.num_available for t in types])
        for route in result.best.routes():
            vt = route.vehicle_type()
            vehicle = built.order[int(offsets[vt]) + used[vt]]
            used[vt] += 1
            visits = []
            for act in route:
                if act.is_client():
                    visits.append((built.client_job[act.idx], 0))
                elif act.is_pickup():
                    visits.append((built.shipment_job[act.idx], 0))
                elif act.is_delivery():
                    visits.append((built.shipment_job[act.idx], 1))
            routes[vehicle] = tuple(visits)
        return Answer("pyvrp", tuple(routes))
