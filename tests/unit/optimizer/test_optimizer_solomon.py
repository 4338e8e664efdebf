"""Solomon reader, a short Solomon solve, and the `flota optimize solve` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud.optimizer import ProblemFormatError, SolveParams, check, solve
from cloud.optimizer.solomon import parse_solomon, read_solomon, to_problem
from flota.commands.optimize import app

DATA = Path(__file__).resolve().parents[2] / "data" / "solomon"
BKS = json.loads((DATA / "BKS.json").read_text())


def test_reader_on_a_real_instance() -> None:
    inst = read_solomon(DATA / "C101.txt")
    assert (inst.name, inst.vehicles, inst.capacity) == ("C101", 25, 200)
    assert len(inst.customers) == 100
    assert inst.depot.due == 1236
    assert inst.customers[0].number == 1
    assert sum(c.demand for c in inst.customers) == BKS["C101"]["total_demand"]


def test_reader_skips_and_counts_bad_rows() -> None:
    text = (DATA / "C101.txt").read_text()
    broken = text.replace("\n    1      45", "\n    1      forty-five", 1) + "\n 101 1 2 3\n"
    inst = parse_solomon(broken, "broken")
    assert inst.skipped_lines == 2
    assert len(inst.customers) == 99
    with pytest.raises(ProblemFormatError):
        parse_solomon("no header here", "empty")


def test_short_solomon_solve_is_feasible_and_close() -> None:
    data = to_problem(read_solomon(DATA / "R201.txt"))
    result = solve(data, SolveParams(time_limit=2.0))
    assert result.feasible, result.violations
    assert check(data, result) == []
    best = BKS["R201_distance"]["best_known_cost"]
    assert result.cost.distance < best * 1.05
    assert sorted(int(s.job_id) for r in result.routes for s in r.stops) == list(range(1, 101))


def test_cli_prints_one_json_object() -> None:
    out = CliRunner().invoke(
        app, ["solve", str(DATA / "C101.txt"), "--time-limit", "1.5", "--json"]
    )
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert answer["feasible"] is True
    assert answer["engine"] in ("pyvrp", "ortools")
    assert sorted(c for route in answer["routes"] for c in route) == list(range(1, 101))
    assert answer["vehicles"] == len(answer["routes"])
    assert answer["distance"] < BKS["C101_distance"]["best_known_cost"] * 1.02


def test_cli_json_problem_with_a_bad_job(tmp_path: Path) -> None:
    problem = {
        "locations": [[0, 0], [3, 4], [6, 8]],
        "depots": [{"id": "D", "location": 0, "window": [0, 100]}],
        "vehicles": [{"id": "v1", "capacity": [5], "start": "D", "end": "D",
                      "breaks": [{"id": "b", "window": [20, 60], "duration": 5}]}],
        "jobs": [
            {"id": "a", "type": "delivery", "location": 1, "amount": [2],
             "windows": [[0, 10], [30, 40]], "service": 1},
            {"id": "bad", "type": "delivery", "location": 99, "amount": [1]},
            {"id": "p", "type": "pair", "pickup": {"location": 2}, "delivery": {"location": 1},
             "amount": [3]},
        ],
    }  # fmt: skip
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem))
    out = CliRunner().invoke(app, ["solve", str(path), "--time-limit", "1", "--json"])
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert answer["feasible"] is True
    assert [r["id"] for r in answer["rejected"]] == ["bad"]
    assert sorted(answer["routes"][0]) == ["a", "p", "p"]
    assert answer["engine"] == "ortools"
    assert len(answer["plan"][0]["breaks"]) == 1
