"""Who runs where: the portfolio's plans, PyVRP's feasibility guard and the OR-Tools fallback."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from cloud.optimizer import (
    GreatCircleMatrix,
    Model,
    Reason,
    SolveParams,
    TimeWindow,
    check,
    portfolio,
    solve,
)
from cloud.optimizer.engines.common import Feature, Scaler
from cloud.optimizer.engines.pyvrp_engine import load_factors
from cloud.optimizer.model import ProblemData
from cloud.optimizer.params import OrToolsParams, PyvrpParams
from cloud.optimizer.solomon import read_solomon, to_problem

SOLOMON_DIR = Path(__file__).resolve().parents[2] / "data" / "solomon"
CLASSIC = frozenset({Feature.CAPACITY, Feature.TIME_WINDOWS})


def test_one_worker_runs_pyvrp_for_the_whole_budget_with_ortools_as_fallback() -> None:
    (pipe,) = portfolio.plan(CLASSIC, SolveParams())
    assert [(s.engine, s.share, s.fallback, s.warm) for s in pipe] == [
        ("pyvrp", 1.0, False, False),
        ("ortools", 1.0, True, False),
    ]


def test_two_workers_run_two_pyvrp_seeds() -> None:
    pipes = portfolio.plan(CLASSIC, SolveParams(workers=2, seed=7))
    assert [p[0].engine for p in pipes] == ["pyvrp", "pyvrp"]
    assert [p[0].params.seed for p in pipes] == [7, 8]
    assert all(p[-1].fallback for p in pipes)


def test_polish_share_puts_a_warm_started_ortools_stage_after_pyvrp() -> None:
    params = SolveParams(ortools=OrToolsParams(polish_share=0.2))
    (pipe,) = portfolio.plan(CLASSIC, params)
    assert pipe[0].share == 0.8
    assert pipe[1].warm
    assert not pipe[1].fallback


def test_problems_pyvrp_cannot_model_go_to_ortools_only() -> None:
    pipes = portfolio.plan(CLASSIC | {Feature.BREAKS}, SolveParams(workers=2))
    assert all([s.engine for s in p] == ["ortools"] for p in pipes)
    firsts = {p[0].params.ortools.first_solution for p in pipes}
    assert len(firsts) == 2  # diversified construction


def test_workers_fork_when_single_threaded_else_not() -> None:
    assert portfolio.start_method() == ("fork" if threading.active_count() == 1 else "forkserver")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert portfolio.start_method() != "fork"
    finally:
        stop.set()
        t.join()


def tight(n_jobs: int, seed: int = 0) -> ProblemData:
    """Three 100 kg vans in a city, deliveries of 33 kg: exactly full at 9 jobs."""
    rng = random.Random(seed)
    m = Model("tight")
    depot = m.add_depot("D", m.add_location(24.94, 60.17), TimeWindow(0, 86400))
    for k in range(3):
        m.add_vehicle(f"v{k}", [100], start=depot, end=depot)
    for j in range(n_jobs):
        x, y = 24.94 + rng.uniform(-0.1, 0.1), 60.17 + rng.uniform(-0.05, 0.05)
        m.add_delivery(f"o{j}", m.add_location(x, y), [33], service=60)
    return m.data(GreatCircleMatrix())


def test_loads_are_scaled_up_only_where_units_make_them_weightless() -> None:
    data = tight(9)
    params = SolveParams()
    assert load_factors(data, Scaler(data, params).cost)[0] > 10  # kg against metres x 1000
    solomon = to_problem(read_solomon(SOLOMON_DIR / "R201.txt"))
    assert load_factors(solomon, Scaler(solomon, params).cost) == [1]


def test_pyvrp_answers_are_within_capacity_on_small_tight_problems() -> None:
    for seed in range(3):
        data = tight(9, seed)
        result = solve(data, SolveParams(time_limit=1.0, safety_margin=0.2))
        assert result.feasible, result.violations
        assert result.engine == "pyvrp"
        assert check(data, result) == []
        loads = [sum(33 for _ in r.stops) for r in result.routes]
        assert max(loads) <= 100
        assert sum(loads) == 297


def test_without_a_feasible_pyvrp_plan_ortools_answers_in_the_same_budget() -> None:
    data = tight(10)  # 330 kg for 300 kg of vans: one mandatory job cannot be served
    params = SolveParams(time_limit=2.0, safety_margin=0.2, pyvrp=PyvrpParams(give_up_share=0.4))
    result = solve(data, params)
    assert result.engine == "ortools"
    assert not result.violations
    assert [(u.reason, u.mandatory) for u in result.unassigned] == [(Reason.NO_ROOM, True)]
    assert sum(len(r.stops) for r in result.routes) == 9
    # forcing PyVRP: no answer at all rather than an overloaded one
    forced = solve(data, replace(params, engine="pyvrp"))
    assert not forced.routes
    assert all(u.reason == Reason.NO_ANSWER for u in forced.unassigned)


def test_two_workers_return_a_checked_answer() -> None:
    data = tight(9, 1)
    result = solve(data, SolveParams(workers=2, time_limit=1.5, safety_margin=0.3))
    assert result.feasible
    assert check(data, result) == []
    assert len(result.attempts) == 2
    assert all(a.feasible for a in result.attempts)
    assert np.isfinite(result.cost.total)
