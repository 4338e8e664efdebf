"""`flota models`: rebuild, evaluate, list and serve the ONNX models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="Train and evaluate the ONNX models.", no_args_is_help=True)


@app.command("train")
def train(
    out: Path = typer.Option(None, help="Model root (default: models/onnx in the source tree)."),
    scale: float = typer.Option(1.0, min=0.01, max=1.0, help="Fraction of devices (quick runs)."),
    only: list[str] = typer.Option(None, help="Train only these models."),
    from_db: bool = typer.Option(
        False, "--from-db", help="Train the ETA model on the database's trips (not simulated)."
    ),
    db_url: str = typer.Option(None, help="Database URL (default: FLOTA_DATABASE_URL)."),
    tenant: list[str] = typer.Option(None, help="With --from-db: only these tenants' trips."),
) -> None:
    """Rebuild every model from scratch (simulate, fit, export, card); seeded, reproducible."""
    from models.training.train import MODELS_ROOT, train_all

    if from_db:
        if only and set(only) != {"eta"}:
            raise typer.BadParameter("--from-db trains only the eta model", param_hint="--only")
        from cloud.db.connection import connect, resolve_url
        from models.eta.db import load_legs
        from models.eta.train import train_eta

        with connect(resolve_url(db_url)) as conn:
            legs = load_legs(conn, tenants=tenant or None)
        typer.echo(
            f"read {legs.trips_read} trips: {len(legs.records)} legs, skipped "
            f"{dict(legs.skipped) or 0}"
        )
        cards = {"eta": train_eta(out or MODELS_ROOT, records=legs.records)}
    else:
        cards = train_all(out or MODELS_ROOT, scale=scale, names=only or None)
    for name, card in cards.items():
        h = card["headline"]
        typer.echo(
            f"{name} {card['version']}: test {h['metric']} {h['value']:.3f} "
            f"(baseline {h['baseline']:.3f}), sha256 {card['sha256'][:12]}, "
            f"{card['size_bytes']:,} bytes, parity {card['parity_max_abs_diff']:.1e}"
        )


@app.command("evaluate")
def evaluate(
    as_json: bool = typer.Option(False, "--json", help="One JSON object keyed by model name."),
    root: Path = typer.Option(None, help="Model root (default: models/onnx)."),
    scale: float = typer.Option(1.0, min=0.01, max=1.0, help="Fraction of test devices."),
    full: bool = typer.Option(False, help="With --json: every metric, not only the headline."),
) -> None:
    """Score the shipped models and their rule baselines on the held-out test split."""
    from models.training.evaluate import evaluate_shipped, headline
    from models.training.train import MODELS_ROOT

    results = evaluate_shipped(root or MODELS_ROOT, scale=scale)
    if as_json:
        typer.echo(json.dumps(results if full else headline(results), sort_keys=True))
        return
    for name, r in results.items():
        m, b = r["model"], r["baseline"]
        typer.echo(f"{name} {r['version']}")
        if name == "eta":
            for part in ("travel", "dwell", "stop", "arrival"):
                typer.echo(
                    f"  {part:8s} MAE {m[part]['mae_s']:7.1f} s  p90 {m[part]['p90_s']:7.1f} s   "
                    f"baseline MAE {b[part]['mae_s']:7.1f} s  p90 {b[part]['p90_s']:7.1f} s"
                )
            continue
        if name == "demand":
            for key in m:
                typer.echo(f"  {key:19s} model {m[key]:.3f}  seasonal naive {b[key]:.3f}")
            continue
        for cls in m["f1"]:
            typer.echo(f"  F1 {cls:14s} model {m['f1'][cls]:.3f}  baseline {b['f1'][cls]:.3f}")
        typer.echo(
            f"  macro F1 (events)   model {m['macro_f1_events']:.3f}  baseline "
            f"{b['macro_f1_events']:.3f}"
        )
        typer.echo(
            f"  false alarms/1000km model {m['false_alarms_per_1000km']:.1f}  baseline "
            f"{b['false_alarms_per_1000km']:.1f}"
        )


@app.command("list")
def list_models(root: Path = typer.Option(None, help="Model root (default: models/onnx).")) -> None:
    """Name, version and sha256 of each model on disk, checked against its card."""
    from edge_agent.inference.card import sha256_file
    from models.training.train import MODELS_ROOT

    base = root or MODELS_ROOT
    for d in sorted(p for p in base.iterdir() if (p / "card.json").exists()):
        card = json.loads((d / "card.json").read_text())
        ok = sha256_file(d / card["onnx_file"]) == card["sha256"]
        typer.echo(
            f"{card['name']} {card['version']} sha256 {card['sha256'][:12]} "
            f"{'ok' if ok else 'MISMATCH'}"
        )


@app.command("serve")
def serve(
    host: str = typer.Option(None, help="Listen address (default 127.0.0.1)."),
    port: int = typer.Option(None, min=0, max=65535, help="Port (default 8095)."),
    root: Path = typer.Option(None, help="Model root (default: models/onnx)."),
    reload_interval: float = typer.Option(None, min=0.1, help="Seconds between file checks."),
) -> None:
    """Serve ETA and demand over HTTP JSON (the internal model service); reloads changed models.

    Settings come from FLOTA_MODELS_* (ROOT, HOST, PORT, RELOAD_INTERVAL_S, MAX_LEGS, ...);
    options override them.
    """
    import logging

    from cloud.models_service.server import serve as run
    from cloud.models_service.settings import ModelsServiceSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "root": root,
            "reload_interval_s": reload_interval,
        }.items()
        if v is not None
    }
    run(ModelsServiceSettings(**overrides))
