"""OR-Tools routing: the designated engine; it supports every constraint of the model."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from cloud.optimizer.engines.common import SUPPORT, Scaler, seconds_left
from cloud.optimizer.errors import EngineError
from cloud.optimizer.model import JobKind, ProblemData
from cloud.optimizer.params import SolveParams
from cloud.optimizer.result import Answer
from cloud.optimizer.schedule import depot_window_start, effective_penalty
from cloud.optimizer.stop import StoppingCriterion

log = logging.getLogger(__name__)


class _Built:
    """The OR-Tools model and the maps between its indices and ours."""

    def __init__(self, data: ProblemData, params: SolveParams) -> None:
        self.data, self.params = data, params
        sc = self.sc = Scaler(data, params)
        # Nodes: one per terminal location (starts, ends), an open-end sink, then one per task.
        terminals = sorted(
            {v.start for v in data.vehicles} | {v.end for v in data.vehicles if v.end is not None}
        )
        has_open = any(v.end is None for v in data.vehicles)
        node_loc = [*terminals, -1] if has_open else list(terminals)
        self.sink = len(terminals) if has_open else -1
        self.task_node: dict[tuple[int, int], int] = {}
        service = [0] * len(node_loc)
        for j, job in enumerate(data.jobs):
            for t, task in enumerate(job.tasks):
                self.task_node[(j, t)] = len(node_loc)
                node_loc.append(task.location)
                service.append(sc.up(task.service))
        self.node_task = {n: jt for jt, n in self.task_node.items()}
        term_node = {loc: i for i, loc in enumerate(terminals)}
        starts = [term_node[v.start] for v in data.vehicles]
        ends = [self.sink if v.end is None else term_node[v.end] for v in data.vehicles]
        self.manager = pywrapcp.RoutingIndexManager(len(node_loc), len(data.vehicles), starts, ends)
        self.routing = pywrapcp.RoutingModel(self.manager)
        locs = np.array(node_loc)
        safe = np.where(locs < 0, 0, locs)
        cost = sc.cost[np.ix_(safe, safe)].copy()
        travel = sc.travel[np.ix_(safe, safe)] + np.array(service, dtype=np.int64)[:, None]
        if has_open:
            cost[:, self.sink] = 0
            travel[:, self.sink] = np.array(service, dtype=np.int64)
            cost[self.sink, :] = 0
            travel[self.sink, :] = 0
        self.service = service
        routing = self.routing
        cost_cb = routing.RegisterTransitMatrix(cost.tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
        time_cb = routing.RegisterTransitMatrix(travel.tolist())
        routing.AddDimension(time_cb, sc.horizon, sc.horizon, False, "time")
        self.time = routing.GetDimensionOrDie("time")
        self._vehicles()
        self._jobs()
        self._capacity()
        self._breaks()

    def index(self, job: int, task: int) -> int:
        return int(self.manager.NodeToIndex(self.task_node[(job, task)]))

    def _vehicles(self) -> None:
        sc, routing, data = self.sc, self.routing, self.data
        for v, vehicle in enumerate(data.vehicles):
            open_at = max(vehicle.shift.start, depot_window_start(data, vehicle.start))
            close = [d.window.end for d in data.depots if d.location == vehicle.end]
            end_by = min([vehicle.shift.end, *close])
            self.time.CumulVar(routing.Start(v)).SetRange(sc.up(open_at), sc.down(end_by))
            self.time.CumulVar(routing.End(v)).SetMax(sc.down(end_by))
            routing.AddVariableMaximizedByFinalizer(self.time.CumulVar(routing.Start(v)))
            routing.AddVariableMinimizedByFinalizer(self.time.CumulVar(routing.End(v)))
            if vehicle.fixed_cost:
                routing.SetFixedCostOfVehicle(sc.money(vehicle.fixed_cost), v)
            prev = routing.Start(v)
            for job_id in vehicle.locked:
                idx = self.index(data.job_index[job_id], 0)
                routing.solver().Add(routing.NextVar(prev) == idx)
                prev = idx

    def _jobs(self) -> None:
        sc, routing, data = self.sc, self.routing, self.data
        solver = routing.solver()
        n_vehicles = len(data.vehicles)
        for j, job in enumerate(data.jobs):
            idxs = [self.index(j, t) for t in range(len(job.tasks))]
            for idx, task in zip(idxs, job.tasks, strict=True):
                cumul = self.time.CumulVar(idx)
                cumul.SetRange(sc.up(task.windows[0].start), sc.down(task.windows[-1].end))
                for before, after in zip(task.windows, task.windows[1:], strict=False):
                    lo, hi = sc.down(before.end) + 1, sc.up(after.start) - 1
                    if lo <= hi:
                        cumul.RemoveInterval(lo, hi)
            allowed = [v for v, veh in enumerate(data.vehicles) if data.vehicle_can_serve(veh, job)]
            for idx in idxs:
                if not allowed:
                    solver.Add(routing.ActiveVar(idx) == 0)
                elif len(allowed) < n_vehicles:
                    routing.VehicleVar(idx).SetValues([-1, *allowed])  # -1: left out
            penalty = sc.money(effective_penalty(job, self.params, data))
            routing.AddDisjunction([idxs[0]], penalty)
            if job.kind is JobKind.PAIR:
                p, d = idxs
                routing.AddDisjunction([d], 0)
                routing.AddPickupAndDelivery(p, d)
                solver.Add(routing.ActiveVar(p) == routing.ActiveVar(d))
                solver.Add(routing.VehicleVar(p) == routing.VehicleVar(d))
                solver.Add(self.time.CumulVar(p) <= self.time.CumulVar(d))

    def _capacity(self) -> None:
        routing, data = self.routing, self.data
        size = len(self.service)
        kinds = {job.kind for job in data.jobs}
        mixed = JobKind.DELIVERY in kinds and len(kinds) > 1
        for dim in range(data.dimensions):
            caps = [v.capacity[dim] for v in data.vehicles]
            onboard = [0] * size  # change of load at each node
            delivered = [0] * size  # plain deliveries only (mixed mode)
            for (j, t), node in self.task_node.items():
                job = data.jobs[j]
                amount = job.amount[dim]
                if job.kind is JobKind.DELIVERY:
                    onboard[node] = amount if not mixed else -amount
                    delivered[node] = amount
                elif job.kind is JobKind.PICKUP:
                    onboard[node] = amount
                else:
                    onboard[node] = amount if t == 0 else -amount
            if not any(onboard):
                continue
            cb = routing.RegisterUnaryTransitVector(onboard)
            name = f"load{dim}"
            # Deliveries only: cumul = delivered so far. Otherwise cumul = load on board,
            # whose start must cover every plain delivery of the route.
            routing.AddDimensionWithVehicleCapacity(cb, 0, caps, not mixed, name)
            if mixed:
                load = routing.GetDimensionOrDie(name)
                dcb = routing.RegisterUnaryTransitVector(delivered)
                routing.AddDimensionWithVehicleCapacity(dcb, 0, caps, True, f"delivered{dim}")
                done = routing.GetDimensionOrDie(f"delivered{dim}")
                for v in range(len(data.vehicles)):
                    routing.solver().Add(
                        load.CumulVar(routing.Start(v)) >= done.CumulVar(routing.End(v))
                    )

    def _breaks(self) -> None:
        routing, sc, data = self.routing, self.sc, self.data
        if not any(v.breaks for v in data.vehicles):
            return
        solver = routing.solver()
        visit = [0] * routing.Size()
        for index in range(routing.Size()):
            visit[index] = self.service[self.manager.IndexToNode(index)]
        for v, vehicle in enumerate(data.vehicles):
            if not vehicle.breaks:
                continue
            intervals = [
                solver.FixedDurationIntervalVar(
                    sc.up(b.window.start),
                    sc.down(b.window.end),
                    sc.up(b.duration),
                    False,
                    f"brk:{v}:{k}",
                )
                for k, b in enumerate(vehicle.breaks)
            ]
            self.time.SetBreakIntervalsOfVehicle(intervals, v, visit)

    def search_parameters(self, seconds: float) -> Any:
        opts = self.params.ortools
        sp = pywrapcp.DefaultRoutingSearchParameters()
        sp.first_solution_strategy = getattr(
            routing_enums_pb2.FirstSolutionStrategy, opts.first_solution
        )
        sp.local_search_metaheuristic = getattr(
            routing_enums_pb2.LocalSearchMetaheuristic, opts.metaheuristic
        )
        sp.guided_local_search_lambda_coefficient = opts.gls_lambda
        sp.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
        return sp

    def warm_routes(self, initial: Answer) -> list[list[int]]:
        return [[self.index(j, t) for j, t in visits] for visits in initial.routes]

    def answer(self, solution: Any) -> Answer:
        routing, sc = self.routing, self.sc
        routes, starts, route_starts = [], [], []
        for v in range(len(self.data.vehicles)):
            idx = routing.Start(v)
            route_starts.append(sc.real(solution.Min(self.time.CumulVar(idx))))
            visits, times = [], []
            idx = solution.Value(routing.NextVar(idx))
            while not routing.IsEnd(idx):
                visits.append(self.node_task[self.manager.IndexToNode(idx)])
                times.append(sc.real(solution.Min(self.time.CumulVar(idx))))
                idx = solution.Value(routing.NextVar(idx))
            routes.append(tuple(visits))
            starts.append(tuple(times))
        breaks: list[list[float]] = [[math.nan] * len(v.breaks) for v in self.data.vehicles]
        intervals = solution.IntervalVarContainer()
        for i in range(intervals.Size()):
            element = intervals.Element(i)
            _, v, k = element.Var().Name().split(":")
            breaks[int(v)][int(k)] = sc.real(element.StartValue())
        return Answer(
            "ortools",
            tuple(routes),
            tuple(starts),
            tuple(tuple(b) for b in breaks),
            tuple(route_starts),
        )


class OrToolsEngine:
    name = "ortools"
    supported = SUPPORT["ortools"]

    def solve(
        self,
        data: ProblemData,
        params: SolveParams,
        stop: StoppingCriterion,
        deadline: float,
        initial: Answer | None = None,
    ) -> Answer | None:
        built = _Built(data, params)
        routing = built.routing
        sp = built.search_parameters(seconds_left(deadline))
        routing.CloseModelWithParameters(sp)

        def on_solution() -> None:
            if stop(routing.CostVar().Value() / built.sc.s):
                routing.CancelSearch()

        routing.AddAtSolutionCallback(on_solution)
        sp = built.search_parameters(seconds_left(deadline))
        solution = None
        if initial is not None:
            start = routing.ReadAssignmentFromRoutes(built.warm_routes(initial), True)
            if start is None:
                log.info("ortools: warm start from %s rejected; solving cold", initial.engine)
            else:
                solution = routing.SolveFromAssignmentWithParameters(start, sp)
        if solution is None:
            solution = routing.SolveWithParameters(sp)
        if solution is None:
            raise EngineError(f"ortools: no solution (status {routing.status()})")
        return built.answer(solution)
