"""PyVRP (iterated local search): strongest on classic VRPTW; a subset of our constraints."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from pyvrp import Client, Depot, Location, ProblemData, Solution, VehicleType, solve
from pyvrp.stop import MultipleCriteria as PyvrpMultiple

from cloud.optimizer.engines.common import HORIZON_CAP, Feature, Scaler
from cloud.optimizer.errors import EngineError
from cloud.optimizer.model import JobKind
from cloud.optimizer.model import ProblemData as OurData
from cloud.optimizer.params import SolveParams
from cloud.optimizer.result import Answer
from cloud.optimizer.schedule import depot_window_start, effective_penalty
from cloud.optimizer.stop import Deadline, StoppingCriterion

INT_MAX = np.iinfo(np.int64).max


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


class PyvrpEngine:
    """Pairs (PyVRP 0.14 shipments) are not mapped yet; OR-Tools takes those problems."""

    name = "pyvrp"
    supported = frozenset(
        {
            Feature.CAPACITY,
            Feature.MULTI_DIMENSION,
            Feature.TIME_WINDOWS,
            Feature.PICKUPS,
            Feature.SHIFTS,
            Feature.START_POSITION,
            Feature.OPTIONAL_JOBS,
            Feature.FIXED_COST,
        }
    )

    def build(self, data: OurData, params: SolveParams) -> tuple[ProblemData, list[int]]:
        """PyVRP data, and for each PyVRP vehicle (in type order) our vehicle index."""
        sc = Scaler(data, params)
        terminals = sorted(
            {v.start for v in data.vehicles} | {v.end for v in data.vehicles if v.end is not None}
        )
        depot_of = {loc: i for i, loc in enumerate(terminals)}
        locs = [*terminals, *(job.tasks[0].location for job in data.jobs)]
        locations = [Location(data.locations[i].x, data.locations[i].y) for i in locs]
        depots = []
        for loc in terminals:
            opens = [d.window for d in data.depots if d.location == loc]
            early = max([w.start for w in opens], default=0.0)
            late = min([w.end for w in opens], default=math.inf)
            depots.append(Depot(depot_of[loc], sc.up(early), _cap(sc.down(late))))
        clients = []
        for j, job in enumerate(data.jobs):
            task = job.tasks[0]
            amount = list(job.amount)
            zero = [0] * data.dimensions
            optional = not job.mandatory
            clients.append(
                Client(
                    location=len(terminals) + j,
                    delivery=amount if job.kind is JobKind.DELIVERY else zero,
                    pickup=amount if job.kind is JobKind.PICKUP else zero,
                    service_duration=sc.up(task.service),
                    tw_early=sc.up(task.windows[0].start),
                    tw_late=_cap(sc.down(task.windows[0].end)),
                    prize=sc.money(effective_penalty(job, params, data)) if optional else 0,
                    required=not optional,
                    name=job.id,
                )
            )
        groups: dict[_TypeKey, list[int]] = defaultdict(list)
        for v, veh in enumerate(data.vehicles):
            open_at = max(veh.shift.start, depot_window_start(data, veh.start))
            end = veh.start if veh.end is None else veh.end  # open routes never get here
            key = _TypeKey(veh.capacity, veh.start, end, open_at, veh.shift.end, veh.fixed_cost)
            groups[key].append(v)
        types, order = [], []
        for key, members in groups.items():
            types.append(
                VehicleType(
                    num_available=len(members),
                    capacity=list(key.capacity),
                    start_depot=depot_of[key.start],
                    end_depot=depot_of[key.end],
                    fixed_cost=sc.money(key.fixed_cost),
                    tw_early=sc.up(key.open_at),
                    tw_late=_cap(sc.down(key.close)),
                )
            )
            order.extend(members)
        idx = np.array(locs)
        dist = sc.cost[np.ix_(idx, idx)].copy()
        dur = sc.travel[np.ix_(idx, idx)].copy()
        np.fill_diagonal(dist, 0)
        np.fill_diagonal(dur, 0)
        problem = ProblemData(locations, clients, depots, types, [dist], [dur])
        return problem, order

    def solve(
        self,
        data: OurData,
        params: SolveParams,
        stop: StoppingCriterion,
        deadline: float,
        initial: Answer | None = None,
    ) -> Answer | None:
        if any(v.end is None for v in data.vehicles):
            raise EngineError("pyvrp: open routes are not supported")
        problem, order = self.build(data, params)
        rule = PyvrpMultiple([Deadline(deadline), stop])
        init = None
        if initial is not None:
            init = self._solution(problem, order, initial)
        result = solve(
            problem, stop=rule, seed=params.seed, collect_stats=False, initial_solution=init
        )
        best = result.best
        routes: list[list[tuple[int, int]]] = [[] for _ in data.vehicles]
        used: dict[int, int] = defaultdict(int)
        offsets = np.cumsum([0] + [t.num_available for t in problem.vehicle_types()])
        for route in best.routes():
            vt = route.vehicle_type()
            vehicle = order[int(offsets[vt]) + used[vt]]
            used[vt] += 1
            routes[vehicle] = [(a.idx, 0) for a in route if a.is_client()]
        return Answer("pyvrp", tuple(tuple(r) for r in routes))

    def _solution(self, problem: ProblemData, order: list[int], initial: Answer) -> Solution | None:
        types = problem.vehicle_types()
        offsets = np.cumsum([0] + [t.num_available for t in types])
        from pyvrp import Route

        routes = []
        for pos, v in enumerate(order):
            visits = initial.routes[v]
            if visits:
                vt = int(np.searchsorted(offsets, pos, side="right") - 1)
                routes.append(Route(problem, [j + problem.num_depots for j, _ in visits], vt))
        try:
            return Solution(problem, routes)
        except (ValueError, RuntimeError):
            return None
