"""Builder validation, parameters from files, stopping rules and travel matrices."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cloud.optimizer import (
    EuclideanMatrix,
    FirstFeasible,
    GreatCircleMatrix,
    MaxIterations,
    MaxRuntime,
    Model,
    ModelError,
    MultipleCriteria,
    NoImprovement,
    ParamsError,
    SolveParams,
    Task,
    TimeWindow,
)
from cloud.optimizer.model import Location
from cloud.optimizer.stop import runtime_limit


def base() -> Model:
    m = Model()
    depot = m.add_depot("D", m.add_location(0, 0))
    m.add_location(1, 1)
    m.add_vehicle("v", [10, 5], start=depot, end=depot)
    return m


def test_a_valid_model_builds_immutable_data() -> None:
    m = base()
    m.add_delivery("j", 1, [1, 1], windows=[TimeWindow(5, 10), TimeWindow(0, 2)])
    data = m.data(EuclideanMatrix())
    assert data.jobs[0].tasks[0].windows[0] == TimeWindow(0, 2)  # sorted
    assert data.distances[0, 1] == pytest.approx(math.sqrt(2))
    with pytest.raises(ValueError, match="read-only"):
        data.distances[0, 1] = 3.0


def test_jobs_without_amount_get_zero_in_every_dimension() -> None:
    m = base()
    m.add_pickup("j", 1)
    assert m.data(EuclideanMatrix()).jobs[0].amount == (0, 0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda m: m.add_delivery("j", 7, [1, 1]), "unknown location"),
        (lambda m: m.add_delivery("j", 1, [-1, 0]), "negative amount"),
        (lambda m: m.add_delivery("j", 1, [1, 1], service=-1), "service"),
        (lambda m: m.add_delivery("j", 1, [1, 1], penalty=-2), "penalty"),
        (lambda m: m.add_delivery("j", 1, [1, 1], priority=-1), "priority"),
        (
            lambda m: m.add_delivery("j", 1, [1], windows=[TimeWindow(0, 5), TimeWindow(4, 9)]),
            "overlap",
        ),
        (lambda m: m.add_vehicle("w", [-1, 0], start=0, end=0), "negative capacity"),
        (lambda m: m.add_location(math.nan, 0), "finite"),
    ],
)
def test_builder_rejects_bad_input(build: object, message: str) -> None:
    m = base()
    with pytest.raises(ModelError, match=message):
        build(m)  # type: ignore[operator]


def test_data_rejects_inconsistent_models() -> None:
    m = base()
    m.add_delivery("j", 1, [1])
    with pytest.raises(ModelError, match="dims"):
        m.data(EuclideanMatrix())
    m = base()
    m.add_delivery("j", 1, [1, 1])
    m.add_delivery("j", 1, [1, 1])
    with pytest.raises(ModelError, match="duplicate job"):
        m.data(EuclideanMatrix())
    m = base()
    m.add_pair("p", Task(0), Task(1), [1, 1])
    m.add_vehicle("w", [1, 1], start=0, end=0, locked=["p"])
    with pytest.raises(ModelError, match="not pairs"):
        m.data(EuclideanMatrix())
    m = base()
    m.add_delivery("j", 1, [1, 1], allowed_vehicles=["ghost"])
    with pytest.raises(ModelError, match="unknown allowed"):
        m.data(EuclideanMatrix())
    with pytest.raises(ModelError, match="matrix"):
        base().data(distances=np.zeros((3, 3)), durations=np.zeros((3, 3)))
    with pytest.raises(ModelError, match="no vehicle"):
        Model().data(distances=np.zeros((0, 0)), durations=np.zeros((0, 0)))
    with pytest.raises(ModelError, match="empty"):
        TimeWindow(5, 1)


def test_params_validate_and_load_from_files(tmp_path: Path) -> None:
    with pytest.raises(ParamsError):
        SolveParams(engine="gurobi")
    with pytest.raises(ParamsError):
        SolveParams(time_limit=0)
    with pytest.raises(ParamsError):
        SolveParams(distance_weight=0, duration_weight=0)
    toml = tmp_path / "p.toml"
    toml.write_text('time_limit = 3.5\nworkers = 2\n[ortools]\nfirst_solution = "SAVINGS"\n')
    loaded = SolveParams.from_file(toml)
    assert (loaded.time_limit, loaded.workers, loaded.ortools.first_solution) == (3.5, 2, "SAVINGS")
    js = tmp_path / "p.json"
    js.write_text('{"engine": "ortools", "seed": 7}')
    assert SolveParams.from_file(js).seed == 7
    js.write_text('{"nonsense": 1}')
    with pytest.raises(ParamsError, match="unknown"):
        SolveParams.from_file(js)
    js.write_text('{"ortools": {"first_solution": "MAGIC"}}')
    with pytest.raises(ParamsError, match="first_solution"):
        SolveParams.from_file(js)


def test_stopping_rules() -> None:
    iters = MaxIterations(2)
    assert [iters(1.0) for _ in range(3)] == [False, False, True]
    flat = NoImprovement(2)
    assert [flat(c) for c in (5.0, 4.0, 4.0, 4.0)] == [False, False, False, True]
    assert not FirstFeasible()(math.inf)
    assert FirstFeasible()(12.0)
    assert MaxRuntime(0)(1.0)
    both = MultipleCriteria((MaxRuntime(5.0), MaxIterations(100)))
    assert runtime_limit(both) == 5.0
    assert runtime_limit(MaxIterations(3)) is None
    with pytest.raises(ParamsError):
        MaxRuntime(-1)


def test_great_circle_matrix() -> None:
    m = Model()
    m.add_location(24.94, 60.17)  # x = longitude, y = latitude
    m.add_location(24.94, 61.17)
    m.add_depot("D", 0)
    m.add_vehicle("v", [1], start=0, end=0)
    data = m.data(GreatCircleMatrix(circuity=1.25))
    one_degree = 111_195.0  # metres of latitude on the mean sphere
    assert data.distances[0, 1] == pytest.approx(one_degree * 1.25, rel=1e-3)
    assert data.durations[0, 1] == pytest.approx(data.distances[0, 1] / (30 / 3.6))


class RushHour:
    """A speed provider that depends on the hour of week (as the learned one will)."""

    def speed(self, origin: Location, dest: Location, hour_of_week: int) -> float:
        return 5.0 if hour_of_week == 8 else 10.0


def test_speed_provider_sets_durations() -> None:
    m = Model()
    m.add_location(24.94, 60.17)
    m.add_location(24.94, 60.18)
    m.add_depot("D", 0)
    m.add_vehicle("v", [1], start=0, end=0)
    slow = m.data(GreatCircleMatrix(speeds=RushHour(), hour_of_week=8))
    fast = m.data(GreatCircleMatrix(speeds=RushHour(), hour_of_week=12))
    assert slow.durations[0, 1] == pytest.approx(2 * fast.durations[0, 1])
    assert slow.durations[0, 1] == pytest.approx(slow.distances[0, 1] / 5.0)
