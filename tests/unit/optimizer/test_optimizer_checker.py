"""The checker catches each kind of violation in hand-made answers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cloud.optimizer import Break, EuclideanMatrix, Model, SolveParams, Task, TimeWindow, check
from cloud.optimizer.model import ProblemData
from cloud.optimizer.result import Answer, Reason, Result, ScheduledBreak, Unassigned
from cloud.optimizer.solve import evaluate

PARAMS = SolveParams()


def small(shift_end: float = 1000.0, locked: tuple[str, ...] = ()) -> ProblemData:
    """Jobs: 0 d1 (window 0-15), 1 d2 (fridge), 2 pair (pickup then delivery)."""
    m = Model()
    depot = m.add_depot("D", m.add_location(0, 0))
    a, b, c, d = (m.add_location(x, y) for x, y in [(10, 0), (20, 0), (0, 10), (0, 20)])
    m.add_vehicle("A", [5], start=depot, end=depot, shift=TimeWindow(0, shift_end),
                  skills=["fridge"], breaks=[Break("rest", TimeWindow(100, 200), 10)])  # fmt: skip
    m.add_vehicle("B", [5], start=depot, end=depot, shift=TimeWindow(0, shift_end), locked=locked)
    m.add_delivery("d1", a, [3], windows=[TimeWindow(0, 15)], service=2)
    m.add_delivery("d2", b, [1], skills=["fridge"])
    m.add_pair("p", Task(c), Task(d), [4])
    return m.data(EuclideanMatrix())


def kinds(data: ProblemData, result: Result) -> set[str]:
    return {v.kind for v in check(data, result)}


def answer(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> Answer:
    return Answer("hand", (tuple(a), tuple(b)))


def with_break(result: Result, start: float) -> Result:
    routes = tuple(
        replace(r, breaks=(ScheduledBreak("rest", start, start + 10),)) if r.vehicle_id == "A"
        else r
        for r in result.routes
    )  # fmt: skip
    return replace(result, routes=routes)


def test_a_valid_answer_passes() -> None:
    data = small()
    res = evaluate(data, answer([(0, 0), (1, 0)], [(2, 0), (2, 1)]), PARAMS)
    res = with_break(res, 150.0)
    assert check(data, res) == []


def test_capacity_per_point() -> None:
    data = small()
    # d1 + d2 (4) on board from the start, then the pair picks up 4 more: 8 > 5.
    res = evaluate(data, answer([(2, 0), (0, 0), (2, 1), (1, 0)], []), PARAMS)
    assert "capacity" in kinds(data, with_break(res, 150.0))


def test_time_window() -> None:
    data = small()
    res = evaluate(data, answer([(1, 0), (0, 0)], [(2, 0), (2, 1)]), PARAMS)
    assert "time_window" in kinds(data, with_break(res, 150.0))


def test_skills() -> None:
    data = small()
    res = evaluate(data, answer([(0, 0)], [(1, 0), (2, 0), (2, 1)]), PARAMS)
    assert "skills" in kinds(data, with_break(res, 150.0))


def test_pair_order_and_split() -> None:
    data = small()
    res = evaluate(data, answer([(0, 0), (1, 0)], [(2, 1), (2, 0)]), PARAMS)
    assert "pair_order" in kinds(data, with_break(res, 150.0))
    res = evaluate(data, answer([(0, 0), (1, 0), (2, 0)], [(2, 1)]), PARAMS)
    assert "pair_split" in kinds(data, with_break(res, 150.0))


def test_served_twice_and_missing() -> None:
    data = small()
    res = evaluate(data, answer([(0, 0), (1, 0), (0, 0)], [(2, 0), (2, 1)]), PARAMS)
    assert "served_twice" in kinds(data, with_break(res, 150.0))
    res = evaluate(data, answer([(0, 0), (1, 0)], [(2, 0), (2, 1)]), PARAMS)
    dropped = replace(
        with_break(res, 150.0), routes=tuple(r for r in res.routes if r.vehicle_id != "B")
    )
    assert "missing" in kinds(data, dropped)
    both = replace(res, unassigned=(Unassigned("d1", Reason.NO_ROOM, True),))
    assert "served_and_unassigned" in kinds(data, with_break(both, 150.0))


def test_breaks() -> None:
    data = small()
    res = evaluate(data, answer([(0, 0), (1, 0)], [(2, 0), (2, 1)]), PARAMS)
    assert "breaks" in kinds(data, res)  # vehicle A never rested
    assert "break_window" in kinds(data, with_break(res, 20.0))
    first = next(r for r in res.routes if r.vehicle_id == "A").stops[0]
    assert "break_overlap" in kinds(data, with_break(res, first.start))


def test_shift_and_travel_times() -> None:
    data = small(shift_end=30.0)
    res = evaluate(data, answer([(0, 0), (1, 0)], [(2, 0), (2, 1)]), PARAMS)
    assert "shift" in kinds(data, res)
    data = small()
    res = with_break(evaluate(data, answer([(0, 0), (1, 0)], [(2, 0), (2, 1)]), PARAMS), 150.0)
    a = next(r for r in res.routes if r.vehicle_id == "A")
    early = replace(a, stops=(replace(a.stops[0], arrival=1.0, start=1.0), *a.stops[1:]))
    assert "travel_time" in kinds(data, replace(res, routes=(early, *res.routes[1:])))


def test_locked_prefix_and_distance() -> None:
    data = small(locked=("d1",))
    res = evaluate(data, answer([(0, 0), (1, 0)], [(2, 0), (2, 1)]), PARAMS)
    assert "locked" in kinds(data, with_break(res, 150.0))
    data = small()
    res = with_break(evaluate(data, answer([(0, 0), (1, 0)], [(2, 0), (2, 1)]), PARAMS), 150.0)
    off = replace(res, routes=(replace(res.routes[0], distance=1.0), *res.routes[1:]))
    assert "distance" in kinds(data, off)


def test_evaluate_marks_rejected_answers_infeasible() -> None:
    data = small()
    res = evaluate(data, answer([(1, 0), (0, 0)], [(2, 0), (2, 1)]), PARAMS)
    assert not res.feasible
    assert res.violations
    assert res.cost.distance == pytest.approx(20 + 10 + 10 + 10 + 10 + 20)
