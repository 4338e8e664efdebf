"""Small solves exercising every constraint kind, through the engines and the checker."""

from __future__ import annotations

import pytest

from cloud.optimizer import (
    Break,
    EuclideanMatrix,
    Model,
    Reason,
    SolveParams,
    Task,
    TimeWindow,
    check,
    solve,
)
from cloud.optimizer.engines.common import Feature, features
from cloud.optimizer.model import ProblemData

FAST = SolveParams(time_limit=1.5, safety_margin=0.2)


def everything(locked: tuple[str, ...] = ()) -> ProblemData:
    """Two vehicles (one already on the road) and one job per constraint kind."""
    m = Model("all-constraints")
    pts = [(0, 0), (10, 0), (20, 0), (0, 10), (0, 20), (10, 10), (-10, 0), (30, 30), (5, 5)]
    loc = [m.add_location(x, y) for x, y in pts]
    depot = m.add_depot("D", loc[0], TimeWindow(0, 1000))
    lunch = Break("lunch", TimeWindow(50, 100), 30)
    m.add_vehicle("A", [10, 2], start=depot, end=depot, shift=TimeWindow(0, 1000),
                  breaks=[lunch], skills=["fridge"])  # fmt: skip
    m.add_vehicle("B", [10, 2], start=loc[7], end=depot, shift=TimeWindow(0, 1000), locked=locked)
    m.add_delivery("d1", loc[1], [3, 0], windows=[TimeWindow(0, 5), TimeWindow(200, 300)])
    m.add_delivery("d2", loc[2], [3, 1], skills=["fridge"], service=5)
    m.add_pickup("p1", loc[3], [2, 0], service=5)
    m.add_pair("pair1", Task(loc[4], service=3), Task(loc[5], service=3), [4, 1])
    m.add_delivery("opt", loc[6], [1, 0], penalty=1.0)
    m.add_delivery("crane", loc[8], [1, 0], skills=["crane"], penalty=1000.0)
    m.add_delivery("heavy", loc[8], [50, 0], penalty=1000.0)
    return m.data(EuclideanMatrix())


def test_features_are_detected() -> None:
    feats = features(everything())
    for f in (Feature.BREAKS, Feature.PAIRS, Feature.SKILLS, Feature.MULTIPLE_WINDOWS,
              Feature.PICKUPS, Feature.START_POSITION, Feature.OPTIONAL_JOBS,
              Feature.MULTI_DIMENSION):  # fmt: skip
        assert f in feats


def test_every_constraint_kind_is_honoured() -> None:
    data = everything()
    result = solve(data, FAST)
    assert result.engine == "ortools"  # breaks, pairs, skills: only OR-Tools supports them
    assert result.feasible, result.violations
    assert check(data, result) == []
    routes = {r.vehicle_id: r for r in result.routes}
    served = {s.job_id: (r.vehicle_id, s) for r in result.routes for s in r.stops}
    assert served["d2"][0] == "A"  # skill
    assert served["pair1"][0] == "A" or served["pair1"][0] == "B"
    pair_stops = [s for r in result.routes for s in r.stops if s.job_id == "pair1"]
    assert [s.task for s in pair_stops] == [0, 1]
    d1 = served["d1"][1]
    assert d1.start <= 5 or 200 <= d1.start <= 300
    if "B" in routes and routes["B"].stops:
        first = routes["B"].stops[0]
        # B leaves from where it is (30, 30), not from the depot.
        assert first.arrival >= routes["B"].departure + data.durations[7, first.location] - 1e-6
    lunch = routes["A"].breaks
    assert len(lunch) == 1
    assert 50 <= lunch[0].start <= 100
    reasons = {u.job_id: u.reason for u in result.unassigned}
    assert reasons == {
        "opt": Reason.NOT_WORTH_SERVING,
        "crane": Reason.NO_VEHICLE_WITH_SKILLS,
        "heavy": Reason.OVER_CAPACITY,
    }
    assert result.cost.penalties == pytest.approx(2001.0)


def test_locked_prefix_is_kept() -> None:
    data = everything(locked=("p1", "d1"))
    result = solve(data, FAST)
    assert result.feasible, result.violations
    b = next(r for r in result.routes if r.vehicle_id == "B")
    assert [s.job_id for s in b.stops[:2]] == ["p1", "d1"]


def test_mandatory_job_nobody_can_serve_makes_result_infeasible() -> None:
    m = Model()
    d, far = m.add_location(0, 0), m.add_location(100, 0)
    depot = m.add_depot("D", d)
    m.add_vehicle("A", [5], start=depot, end=depot, shift=TimeWindow(0, 50))
    m.add_delivery("late", far, [1])
    m.add_delivery("ok", m.add_location(1, 1), [1])
    result = solve(m.data(EuclideanMatrix()), FAST)
    assert not result.feasible
    assert [(u.job_id, u.reason, u.mandatory) for u in result.unassigned] == [
        ("late", Reason.UNREACHABLE_IN_TIME, True)
    ]
    assert [s.job_id for s in result.routes[0].stops] == ["ok"]


@pytest.mark.parametrize("engine", ["pyvrp", "ortools"])
def test_pickups_and_deliveries_share_capacity(engine: str) -> None:
    """Deliveries leave the depot on board, pickups come back: both count against capacity."""
    m = Model()
    depot = m.add_depot("D", m.add_location(0, 0))
    for k in range(2):
        m.add_vehicle(f"v{k}", [10], start=depot, end=depot)
    for k, (x, y) in enumerate([(10, 0), (10, 1), (-10, 0), (-10, 1)]):
        m.add_delivery(f"d{k}", m.add_location(x, y), [5])
        m.add_pickup(f"p{k}", m.add_location(x, y + 0.5), [5])
    data = m.data(EuclideanMatrix())
    result = solve(data, SolveParams(engine=engine, time_limit=1.0, safety_margin=0.2))
    assert result.feasible, result.violations
    assert result.engine == engine
    for route in result.routes:
        assert max(route.start_load[0], *(s.load[0] for s in route.stops)) <= 10


def test_two_process_portfolio_returns_best_checked_answer() -> None:
    m = Model()
    depot = m.add_depot("D", m.add_location(50, 50))
    for k in range(4):
        m.add_vehicle(f"v{k}", [30], start=depot, end=depot, shift=TimeWindow(0, 400))
    for k in range(20):
        x, y = (k * 37) % 100, (k * 61) % 100
        m.add_delivery(str(k + 1), m.add_location(x, y), [5], windows=[TimeWindow(0, 300)])
    data = m.data(EuclideanMatrix())
    result = solve(data, SolveParams(workers=2, time_limit=3.0))
    assert result.feasible, result.violations
    assert len(result.attempts) >= 2
    assert result.cost.total == pytest.approx(min(a.total for a in result.attempts if a.feasible))


@pytest.mark.parametrize("engine", ["pyvrp", "ortools"])
def test_pairs_and_multiple_windows_on_both_engines(engine: str) -> None:
    """PyVRP carries pairs as shipments and windows as mutually exclusive client copies."""
    m = Model()
    depot = m.add_depot("D", m.add_location(0, 0))
    for k in range(3):
        m.add_vehicle(f"v{k}", [10, 3], start=depot, end=depot, shift=TimeWindow(0, 1000))
    for k in range(6):
        a = m.add_location(10 * k - 30, 20)
        b = m.add_location(30 - 10 * k, -20)
        m.add_pair(f"p{k}", Task(a, service=2), Task(b, (TimeWindow(0, 600),), 2), [3, 1])
    late_or_early = [TimeWindow(0, 40), TimeWindow(150, 250)]
    for k in range(4):
        m.add_delivery(f"d{k}", m.add_location(5 * k, 5), [2, 0], windows=late_or_early)
    m.add_delivery("moon", m.add_location(5000, 0), [1, 0])  # unreachable within the shift
    data = m.data(EuclideanMatrix())
    result = solve(data, SolveParams(engine=engine, time_limit=1.0, safety_margin=0.2))
    assert result.engine == engine
    assert result.violations == ()
    assert [(u.job_id, u.reason) for u in result.unassigned] == [
        ("moon", Reason.UNREACHABLE_IN_TIME)
    ]
    assert not result.feasible  # a mandatory job is left out
    for route in result.routes:
        for stop in route.stops:
            if stop.job_id.startswith("d"):
                assert stop.start <= 40 or 150 <= stop.start <= 250
