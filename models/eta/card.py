"""The ETA model's card: what a reader and the service need (inputs with units, outputs, data)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud.models_service.eta_features import FEATURE_NAMES, FEATURE_UNITS, H3_RESOLUTION
from models.eta.dataset import DWELL_UNIT_S, REF_CIRCUITY, REF_FLOOR_S, REF_SPEED_MPS
from models.eta.export import INPUT, OPSET, OUTPUTS
from models.training.card_text import cloud_card_head, inputs_table

DATA_SIM = (
    "Simulated delivery fleet (models/eta/fleet.py), seed {seed}: {days} days from Monday "
    "2026-12-28, H3 resolution-8 cells within 9 of central Helsinki with a kind (centre, inner, "
    "outer, arterial), free-flow speed, circuity and traffic-light delays; congestion by local "
    "hour of week; per-driver pace, per-leg noise, 3% incidents; dwell by cell, hour and driver "
    "(log-normal). Routes of 6-14 stops, three in four starting at 6-10 local time, the rest at "
    "any hour; weekdays, some Saturdays and Sundays. Split by vehicle: train 60, validation 10, "
    "test 30 (disjoint depots, drivers)."
)
DATA_DB = (
    "Finished trips from the database's `trips` view (`flota ingest geo`), one leg per trip; "
    "dwell = the gap to the same vehicle's next trip when under 3 h. Split by time: oldest 70% "
    "train, next 10% validation, newest 20% test."
)


def make_card(
    *,
    onnx_bytes: bytes,
    out_dir: Path,
    version: str,
    metrics: dict[str, Any],
    parity: float,
    dwell_const: float,
    source: str,
    sizes: dict[str, int],
    selftest_x: npt.NDArray[np.float32],
    selftest_y: list[list[float]],
    scale: float,
) -> dict[str, Any]:
    from models.eta.train import DAYS, SEED

    test = metrics["test"]
    return {
        "name": "eta",
        "version": version,
        "date": "2026-11-28",
        "task": "Per stop: travel time from the previous stop and dwell time at the stop.",
        "served_by": "the cloud model service (`flota models serve`, POST /v1/eta)",
        "onnx_file": "model.onnx",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "size_bytes": len(onnx_bytes),
        "opset": OPSET,
        "n_features": len(FEATURE_NAMES),
        "input_name": INPUT,
        "inputs": [{"name": n, "unit": FEATURE_UNITS[n]} for n in FEATURE_NAMES],
        "h3_resolution": H3_RESOLUTION,
        "outputs": {
            OUTPUTS[0]: "float32 (n, 1): log(travel_s / reference_s); reference_s = max("
            f"{REF_FLOOR_S:.0f} s, gc_distance_m x {REF_CIRCUITY} / {REF_SPEED_MPS:.4f} m/s); "
            "travel_s = reference_s x exp(output)",
            OUTPUTS[1]: f"float32 (n, 1): log(dwell_s / {DWELL_UNIT_S:.0f} s); "
            f"dwell_s = {DWELL_UNIT_S:.0f} x exp(output)",
        },
        "reference": {
            "circuity": REF_CIRCUITY,
            "speed_mps": REF_SPEED_MPS,
            "floor_s": REF_FLOOR_S,
            "dwell_unit_s": DWELL_UNIT_S,
        },
        "learner": "two sklearn HistGradientBoostingRegressor(loss='absolute_error', "
        f"max_iter=200, learning_rate=0.08, max_leaf_nodes=31, l2_regularization=1.0, "
        f"random_state={SEED}); travel weighted by reference_s (an L1 fit in seconds)",
        "baseline": "travel: the optimizer's estimate (cloud/optimizer/matrix.py "
        f"GreatCircleMatrix: great-circle x {REF_CIRCUITY} at {REF_SPEED_MPS * 3.6:.0f} km/h, its "
        f"dispatch defaults); dwell: the training median, {dwell_const:.0f} s (the optimizer "
        "itself assumes the order's service time, 0 s by default)",
        "baseline_dwell_s": round(dwell_const, 3),
        "parity_max_abs_diff": parity,
        "metrics": metrics,
        "headline": {
            "metric": "stop_mae_s",
            "value": test["model"]["stop"]["mae_s"],
            "baseline": test["baseline"]["stop"]["mae_s"],
            "higher_is_better": False,
        },
        "data": {
            "source": source,
            "description": DATA_SIM.format(seed=SEED, days=DAYS)
            if source == "simulator"
            else DATA_DB,
            "scale": scale,
            "legs": sizes,
        },
        "selftest": {
            "inputs": selftest_x.tolist(),
            "outputs": selftest_y,
            "tolerance": 1e-4,
        },
    }


def render(card: dict[str, Any]) -> str:
    t = card["metrics"]["test"]
    m, b = t["model"], t["baseline"]
    rows = [
        f"| {part} {k.split('_')[0].upper()} (s) | **{m[part][k]:.1f}** | {b[part][k]:.1f} |"
        for part in ("travel", "dwell", "stop", "arrival")
        for k in ("mae_s", "p90_s")
    ]
    return "\n".join(
        [
            *cloud_card_head(card),
            "",
            f"## Test metrics ({t['legs']} legs, {t['legs_with_dwell']} with a known dwell)",
            "",
            "stop = travel + dwell per stop; arrival = arrival time at each stop counted from "
            "the route's start, each leg's departure predicted (errors add up along a route).",
            "",
            "| | model | baseline |",
            "|---|---|---|",
            *rows,
            "",
            "## Data",
            "",
            card["data"]["description"],
            "",
            "## Inputs",
            "",
            *inputs_table(card),
            "",
            "## Outputs",
            "",
            *[f"- `{k}`: {v}" for k, v in card["outputs"].items()],
            "",
            "## Limits",
            "",
            "Trained on a simulated city unless retrained from the database "
            "(`flota models train --only eta --from-db`); real-road accuracy is unmeasured. "
            "Straight-line features: no road graph.",
            "",
        ]
    )
