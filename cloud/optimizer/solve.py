"""`solve(data, params, stop)`: run the engines, check every answer, return the best one."""

from __future__ import annotations

import logging
import time

from cloud.optimizer import portfolio
from cloud.optimizer.checker import check
from cloud.optimizer.engines.common import features
from cloud.optimizer.model import ProblemData
from cloud.optimizer.params import SolveParams
from cloud.optimizer.result import Answer, Attempt, Cost, Reason, Result, Unassigned
from cloud.optimizer.schedule import build_result
from cloud.optimizer.stop import MaxRuntime, StoppingCriterion, runtime_limit

log = logging.getLogger(__name__)


def _evaluate(data: ProblemData, answer: Answer, params: SolveParams) -> Result:
    routes, unassigned, cost = build_result(data, answer, params)
    draft = Result(routes, unassigned, cost, answer.engine, feasible=False)
    violations = tuple(str(v) for v in check(data, draft))
    feasible = not violations and not any(u.mandatory for u in unassigned)
    return Result(routes, unassigned, cost, answer.engine, feasible, violations)


def _rank(result: Result) -> tuple[bool, int, float]:
    missing = sum(1 for u in result.unassigned if u.mandatory)
    return (bool(result.violations), missing, result.cost.total)


def solve(
    data: ProblemData,
    params: SolveParams | None = None,
    stop: StoppingCriterion | None = None,
) -> Result:
    """Best checked answer within the time budget (the stop rule's runtime or params')."""
    params = params or SolveParams()
    t0 = time.time()
    limit = runtime_limit(stop) if stop is not None else None
    budget = min(limit, params.time_limit) if limit is not None else params.time_limit
    stop = stop if stop is not None else MaxRuntime(budget)
    deadline = t0 + max(0.05, budget - params.safety_margin)
    pipelines = portfolio.plan(features(data), params)
    answers = portfolio.run(data, pipelines, stop, deadline) if data.jobs else []
    if not data.jobs:
        answers = [Answer("none", tuple(() for _ in data.vehicles))]
    results = [_evaluate(data, a, params) for a in answers]
    attempts = []
    for res in results:
        attempts.append(Attempt(res.engine, res.cost.total, res.feasible, len(res.violations)))
        if res.violations:
            log.warning(
                "checker rejected the %s answer (%d violations), e.g. %s",
                res.engine,
                len(res.violations),
                res.violations[0],
            )
    runtime = time.time() - t0
    if not results:
        unassigned = tuple(Unassigned(j.id, Reason.NO_ANSWER, j.mandatory) for j in data.jobs)
        return Result((), unassigned, Cost(0, 0, 0, 0, 0), "none", False, (), runtime)
    best = min(results, key=_rank)
    if best.violations:
        # Never hand out a plan that breaks a rule as if it were usable.
        log.error("no engine produced a valid plan; returning the least bad one as infeasible")
    return Result(
        best.routes,
        best.unassigned,
        best.cost,
        best.engine,
        best.feasible,
        best.violations,
        runtime,
        tuple(attempts),
    )


def evaluate(data: ProblemData, answer: Answer, params: SolveParams) -> Result:
    """Time and check any answer (also one made outside the optimizer, e.g. a reference)."""
    return _evaluate(data, answer, params)
