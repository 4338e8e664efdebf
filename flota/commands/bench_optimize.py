"""Benchmark: routing gap to the Solomon distance-only best known solutions."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cloud.optimizer.model import ProblemData
    from cloud.optimizer.result import Result

log = logging.getLogger(__name__)

SHARED_DIR = Path("/work/shared/data/solomon")
REPO_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "solomon"

# name -> (engine, workers); "vroom" is run directly through pyvroom.
CONFIGS: dict[str, tuple[str, int]] = {
    "portfolio-2p": ("auto", 2),
    "portfolio-1p": ("auto", 1),
    "pyvrp": ("pyvrp", 1),
    "ortools": ("ortools", 1),
    "vroom": ("vroom", 1),
}
DEFAULT_CONFIGS = "portfolio-2p,portfolio-1p"
REFERENCES = ("pyvrp", "vroom")


def _vroom_answer(data: ProblemData, seconds: float) -> Any:
    """Solve with VROOM (benchmark-only reference) and map its routes to our Answer."""
    import vroom

    from cloud.optimizer.engines.common import Scaler
    from cloud.optimizer.params import SolveParams
    from cloud.optimizer.result import Answer

    sc = Scaler(data, SolveParams(scale=100))
    inp = vroom.Input()
    inp.set_durations_matrix(profile="car", matrix_input=sc.travel.tolist())
    inp.set_costs_matrix(profile="car", matrix_input=sc.cost.tolist())
    for k, v in enumerate(data.vehicles):
        inp.add_vehicle(
            vroom.Vehicle(
                k + 1,
                start=v.start,
                end=v.end,
                capacity=list(v.capacity),
                time_window=vroom.TimeWindow(sc.up(v.shift.start), sc.down(v.shift.end)),
            )
        )
    for j, job in enumerate(data.jobs):
        task = job.tasks[0]
        windows = [vroom.TimeWindow(sc.up(w.start), sc.down(w.end)) for w in task.windows]
        inp.add_job(
            vroom.Job(
                j + 1,
                location=task.location,
                delivery=list(job.amount),
                default_service=sc.up(task.service),
                time_windows=windows,
            )
        )
    sol = inp.solve(exploration_level=5, nb_threads=1, timeout=dt.timedelta(seconds=seconds))
    routes: list[list[tuple[int, int]]] = [[] for _ in data.vehicles]
    frame = sol.routes
    for vid, kind, jid in zip(frame["vehicle_id"], frame["type"], frame["id"], strict=True):
        if kind == "job":
            routes[int(vid) - 1].append((int(jid) - 1, 0))
    return Answer("vroom", tuple(tuple(r) for r in routes))


def run_config(data: ProblemData, config: str, seconds: float, seed: int) -> Result:
    from cloud.optimizer import SolveParams, solve
    from cloud.optimizer.engines.common import features
    from cloud.optimizer.portfolio import warm_up
    from cloud.optimizer.solve import evaluate

    engine, workers = CONFIGS[config]
    if engine != "vroom":
        warm_up(features(data), SolveParams(engine=engine, workers=workers))
    if engine == "vroom":
        t0 = time.time()
        result = evaluate(data, _vroom_answer(data, seconds), SolveParams())
        return result.with_runtime(time.time() - t0)
    return solve(data, SolveParams(engine=engine, workers=workers, time_limit=seconds, seed=seed))


def run(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    time_limit: float = typer.Option(10.0, "--time-limit", help="Seconds per instance."),
    instances: str = typer.Option("*", help="Glob(s) of instance names, comma-separated."),
    data_dir: Path | None = typer.Option(None, help="Folder with *.txt and BKS.json."),
    references: bool = typer.Option(
        True, "--references/--no-references", help="Also run PyVRP alone and VROOM."
    ),
    configs: str = typer.Option(DEFAULT_CONFIGS, help=f"Configurations: {', '.join(CONFIGS)}."),
    seed: int = typer.Option(0, help="Random seed for every engine."),
) -> None:
    from cloud.optimizer.solomon import read_solomon, to_problem

    folder = data_dir or (SHARED_DIR if SHARED_DIR.is_dir() else REPO_DIR)
    bks = json.loads((folder / "BKS.json").read_text())
    patterns = [p.strip() for p in instances.split(",") if p.strip()]
    files = sorted(
        p for p in folder.glob("*.txt") if any(fnmatch.fnmatch(p.stem, pat) for pat in patterns)
    )
    names = [c.strip() for c in configs.split(",") if c.strip()]
    if references:
        names += [r for r in REFERENCES if r not in names]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not files:
        typer.echo(f"unknown configs {unknown} or no instance matches {instances}", err=True)
        raise typer.Exit(2)
    rows: list[dict[str, Any]] = []
    for path in files:
        data = to_problem(read_solomon(path))
        best = float(bks[f"{path.stem}_distance"]["best_known_cost"])
        row: dict[str, Any] = {"instance": path.stem, "bks": best}
        for name in names:
            res = run_config(data, name, time_limit, seed)
            gap = 100.0 * (res.cost.distance - best) / best if res.feasible else None
            row[name] = {
                "distance": round(res.cost.distance, 4),
                "gap": gap and round(gap, 4),
                "vehicles": res.num_vehicles,
                "feasible": res.feasible,
                "engine": res.engine,
                "runtime": round(res.runtime, 2),
            }
        rows.append(row)
        if not as_json:
            cells = "  ".join(f"{n} {_fmt(row[n]['gap'])}" for n in names)
            typer.echo(f"{path.stem:7s} bks {best:9.2f}  {cells}")
    summary = _summary(rows, names)
    if as_json:
        out = {
            "benchmark": "solomon-distance",
            "time_limit": time_limit,
            "date": dt.date.today().isoformat(),
            "cpus": os.cpu_count(),
            "processes": {n: CONFIGS[n][1] for n in names},
            "instances": rows,
            **summary,
        }
        typer.echo(json.dumps(out))
    else:
        for n in names:
            typer.echo(
                f"mean gap {n}: {_fmt(summary['mean_gap'][n])}"
                f"  (feasible {summary['feasible'][n]}/{len(rows)})"
            )


def _fmt(gap: float | None) -> str:
    return "infeasible" if gap is None else f"{gap:.3f}%"


def _summary(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    mean: dict[str, float | None] = {}
    feasible: dict[str, int] = {}
    worse: dict[str, int] = {}
    for n in names:
        gaps = [r[n]["gap"] for r in rows]
        feasible[n] = sum(g is not None for g in gaps)
        mean[n] = statistics.fmean(gaps) if all(g is not None for g in gaps) else None
        if "pyvrp" in names and n != "pyvrp":
            worse[n] = sum(
                1
                for r in rows
                if r["pyvrp"]["gap"] is not None
                and (r[n]["gap"] is None or r[n]["gap"] > r["pyvrp"]["gap"] + 1e-9)
            )
    return {"mean_gap": mean, "feasible": feasible, "worse_than_pyvrp": worse}
