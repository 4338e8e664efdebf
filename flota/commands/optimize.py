"""`flota optimize`: route optimisation (solve a file, live dispatch, learned speeds)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cloud.optimizer.model import ProblemData
    from cloud.optimizer.result import Result

app = typer.Typer(help="Route optimisation (solve, serve, learn-speeds).", no_args_is_help=True)


def _num(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def result_json(
    data: ProblemData, result: Result, *, numeric_ids: bool, rejected: list[dict[str, str]]
) -> dict[str, Any]:
    """The printed object: distance, vehicles, routes, feasible, engine, then details."""

    def ident(job_id: str) -> int | str:
        return int(job_id) if numeric_ids else job_id

    return {
        "distance": result.cost.distance,
        "vehicles": result.num_vehicles,
        "routes": [[ident(s.job_id) for s in r.stops] for r in result.routes if r.stops],
        "feasible": result.feasible,
        "engine": result.engine,
        "cost": {
            k: _num(getattr(result.cost, k))
            for k in ("distance", "duration", "fixed", "penalties", "total")
        },
        "unassigned": [
            {"id": ident(u.job_id), "reason": str(u.reason), "mandatory": u.mandatory}
            for u in result.unassigned
        ],
        "plan": [
            {
                "vehicle": r.vehicle_id,
                "departure": _num(r.departure),
                "arrival": _num(r.arrival),
                "stops": [
                    {
                        "job": ident(s.job_id),
                        "kind": s.kind,
                        "arrival": _num(s.arrival),
                        "start": _num(s.start),
                        "departure": _num(s.departure),
                    }
                    for s in r.stops
                ],
                "breaks": [
                    {"id": b.break_id, "start": _num(b.start), "end": _num(b.end)} for b in r.breaks
                ],
            }
            for r in result.routes
        ],
        "violations": list(result.violations),
        "rejected": rejected,
        "attempts": [
            {"engine": a.engine, "total": _num(a.total), "feasible": a.feasible}
            for a in result.attempts
        ],
        "runtime": round(result.runtime, 3),
    }


def load(path: Path) -> tuple[ProblemData, bool, list[dict[str, str]]]:
    """Problem data from a JSON problem or a Solomon text file; numeric ids for Solomon."""
    from cloud.optimizer.problem_json import read_problem
    from cloud.optimizer.solomon import read_solomon, to_problem

    if path.suffix.lower() == ".json":
        loaded = read_problem(path)
        rejected = [{"kind": r.kind, "id": r.id, "reason": r.reason} for r in loaded.rejected]
        return loaded.data, False, rejected
    inst = read_solomon(path)
    return to_problem(inst), True, []


@app.command("solve")
def solve_cmd(
    file: Path = typer.Argument(..., help="Solomon .txt file or a JSON problem (.json)."),
    time_limit: float = typer.Option(10.0, "--time-limit", help="Wall-time budget (s)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    engine: str = typer.Option("auto", help="auto (portfolio), ortools or pyvrp."),
    workers: int = typer.Option(1, help="Processes for the portfolio (1 = one core)."),
    seed: int = typer.Option(0, help="Random seed."),
    params_file: Path | None = typer.Option(None, "--params", help="TOML/JSON parameters."),
) -> None:
    """Solve one problem and print the plan."""
    from dataclasses import replace

    from cloud.optimizer import OptimizerError, SolveParams, solve
    from cloud.optimizer.engines.common import features
    from cloud.optimizer.portfolio import warm_up

    try:
        base = SolveParams.from_file(params_file) if params_file else SolveParams()
        params = replace(base, engine=engine, workers=workers, seed=seed, time_limit=time_limit)
        data, numeric, rejected = load(file)
        warm_up(features(data), params)  # imports do not eat into the search budget
        result = solve(data, params)
    except OptimizerError as err:
        if as_json:
            typer.echo(json.dumps({"error": str(err), "feasible": False}))
        else:
            typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    out = result_json(data, result, numeric_ids=numeric, rejected=rejected)
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(
        f"{data.name}: distance {result.cost.distance:.2f}, {result.num_vehicles} vehicles, "
        f"feasible={result.feasible}, engine={result.engine}, "
        f"{len(result.unassigned)} unassigned, {result.runtime:.1f} s"
    )
    for route in out["routes"]:
        typer.echo("  " + " ".join(str(x) for x in route))


@app.command("serve")
def serve(
    time_limit: float | None = typer.Option(
        None, "--time-limit", help="Solver budget per re-optimisation (s)."
    ),
    min_interval: float | None = typer.Option(
        None, "--min-interval", help="At most one re-optimisation per depot this often (s)."
    ),
    log_level: str = typer.Option("INFO", help="Logging level."),
) -> None:
    """The live dispatch service: orders and vehicle events from Kafka -> route plans to the
    vehicles (commands topic), acknowledgements recorded. Settings: FLOTA_* (docs/dispatch.md);
    FLOTA_METRICS_PORT serves Prometheus metrics on 127.0.0.1."""
    import contextlib
    import logging
    import signal
    import threading

    from pydantic import ValidationError

    from cloud.optimizer.dispatch.service import DispatchService
    from cloud.settings import DispatchSettings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides: dict[str, Any] = {}
    if time_limit is not None:
        overrides["dispatch_time_limit_s"] = time_limit
    if min_interval is not None:
        overrides["dispatch_min_interval_s"] = min_interval
    try:
        settings = DispatchSettings(**overrides)
    except (ValidationError, ValueError) as err:
        typer.echo(f"error: bad settings: {err}", err=True)
        raise typer.Exit(2) from err
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()  # SIGTERM / SIGINT: finish the current step, close cleanly
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        DispatchService(settings).run(stop)


@app.command("learn-speeds")
def learn_speeds(
    tenant: str = typer.Option(..., help="Tenant whose fixes to learn from."),
    days: float = typer.Option(28.0, help="Learn from the fixes of the last DAYS days."),
    until: float | None = typer.Option(None, help="End of the window (epoch s; default now)."),
    resolution: int = typer.Option(8, help="H3 resolution of the cells."),
    min_samples: int = typer.Option(30, help="Steps a (cell, hour) needs before it counts."),
    default_mps: float = typer.Option(30 / 3.6, help="Speed where the fleet has too few (m/s)."),
    holdout: float = typer.Option(0.2, help="Share of trips held back to measure the error."),
    save: bool = typer.Option(True, "--save/--dry-run", help="Store the model (0008 tables)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Learn travel speeds per H3 cell and hour of week from the stored fixes, report their
    error on held-out trips, and store them for the dispatcher (docs/optimizer.md)."""
    import time

    from pydantic import ValidationError

    from cloud.db import connect
    from cloud.optimizer.speeds import LearnParams
    from cloud.optimizer.speeds import store as speed_store
    from cloud.settings import DatabaseSettings

    try:
        settings = DatabaseSettings()  # type: ignore[call-arg]
        params = LearnParams(
            resolution=resolution,
            min_samples=min_samples,
            default_mps=default_mps,
            holdout=holdout,
        )
    except (ValidationError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    end = until if until is not None else time.time()
    with connect(settings.database_url.get_secret_value(), application_name="flota-speeds") as c:
        model, report = speed_store.learn_from_db(c, tenant, end - days * 86400, end, params)
        c.commit()
        version = speed_store.save(c, tenant, model, report, params) if save else None
    out = {"tenant": tenant, "version": version, **speed_store.report_json(report, params)}
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(
        f"{tenant}: {report.fixes} fixes, {report.trips_learned} trips learned, "
        f"{report.trips_held_out} held out; {report.keys} (cell, hour) speeds over "
        f"{report.cells} cells; stored: {version or 'no (dry run)'}"
    )
    for label, fig, base in (
        ("along the path", report.path, report.path_default),
        ("straight legs", report.legs, report.legs_default),
    ):
        typer.echo(
            f"  {label}: MAE {fig.mae_s:.1f} s, p90 {fig.p90_s:.1f} s over {fig.n}"
            f" (default speed: MAE {base.mae_s:.1f} s, p90 {base.p90_s:.1f} s)"
        )
