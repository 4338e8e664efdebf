"""Train, export and score the demand model against the seasonal-naive forecast."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.inference.card import sha256_file
from models.demand.features import FEATURE_NAMES, FEATURE_UNITS, MIN_HISTORY, WEEK, dataset
from models.demand.history import simulate_history
from models.training.card_text import cloud_card_head, inputs_table
from models.training.split_trees import split_regressor

log = logging.getLogger(__name__)
NAME = "demand"
VERSION = "1.1.0"  # 1.1: trees summed in float64 groups (same fit, parity 1e-6)
SEED = 20261128
WEEKS = 20
SPLITS = {
    "train": range(MIN_HISTORY, 15 * WEEK),
    "val": range(15 * WEEK, 16 * WEEK),
    "test": range(16 * WEEK, WEEKS * WEEK),
}
OPSET = {"": 17, "ai.onnx.ml": 3}
PARITY_TOLERANCE = 1e-5  # orders/hour, on the test set (trees summed in float64 groups)
TREES_PER_GROUP = 10
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def scores(y: F64, pred: F64) -> dict[str, float]:
    err = np.abs(y - pred)
    return {
        "mae": round(float(err.mean()), 4),
        "wape": round(float(err.sum() / max(y.sum(), 1e-9)), 4),
        "p90_abs_error": round(float(np.percentile(err, 90)), 4),
    }


def onnx_predict(onnx_bytes: bytes, x: F32) -> F64:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    out: F64 = np.asarray(sess.run(None, {"features": x})[0], dtype=np.float64).ravel()
    return out


def data() -> dict[str, tuple[F32, F64]]:
    hist = simulate_history(SEED, WEEKS)
    return {k: dataset(hist.counts, r, hist.start_weekday) for k, r in SPLITS.items()}


def oracle_test_mae() -> float:
    """MAE of the true Poisson rate: the floor no forecast can beat (the rest is noise)."""
    hist = simulate_history(SEED, WEEKS)
    hours = SPLITS["test"]
    y = np.concatenate([hist.counts[t] for t in hours])
    rate = np.concatenate([hist.rate[t] for t in hours])
    return round(float(np.abs(y - rate).mean()), 4)


def train_demand(out_root: Path) -> dict[str, Any]:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    t0 = time.monotonic()
    sets = data()
    x_tr, y_tr = sets["train"]
    model = HistGradientBoostingRegressor(
        max_iter=150,
        learning_rate=0.08,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=SEED,
    )
    with threadpool_limits(1):
        model.fit(x_tr, y_tr)
    onx = split_regressor(
        to_onnx(
            model,
            initial_types=[("features", FloatTensorType([None, len(FEATURE_NAMES)]))],
            target_opset=OPSET,
        ),
        TREES_PER_GROUP,
    )
    onx.doc_string = f"{NAME} {VERSION}: orders in the next hour per H3 cell"
    onnx_bytes: bytes = onx.SerializeToString()
    out_dir = out_root / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(onnx_bytes)
    metrics: dict[str, Any] = {}
    for split in ("val", "test"):
        x, y = sets[split]
        pred = onnx_predict(onnx_bytes, x)
        metrics[split] = {
            "model": scores(y, np.maximum(pred, 0.0)),
            "baseline": scores(y, x[:, FEATURE_NAMES.index("lag_168h")].astype(np.float64)),
        }
    x_te = sets["test"][0]
    parity = float(np.max(np.abs(onnx_predict(onnx_bytes, x_te) - model.predict(x_te))))
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"{NAME}: ONNX differs from sklearn by {parity:.2e} on test")
    card: dict[str, Any] = {
        "name": NAME,
        "version": VERSION,
        "date": "2026-11-28",
        "task": "Orders created in the next hour per H3 cell (resolution 8), 1 hour ahead.",
        "served_by": "the cloud model service (`flota models serve`, POST /v1/demand)",
        "onnx_file": "model.onnx",
        "sha256": sha256_file(out_dir / "model.onnx"),
        "size_bytes": len(onnx_bytes),
        "opset": OPSET,
        "n_features": len(FEATURE_NAMES),
        "input_name": "features",
        "inputs": [{"name": n, "unit": FEATURE_UNITS[n]} for n in FEATURE_NAMES],
        "outputs": {
            "variable": "float64 (n, 1) expected orders in the hour; clip at 0 (trees in groups "
            f"of {TREES_PER_GROUP} summed in float32, the groups in float64)"
        },
        "learner": f"sklearn HistGradientBoostingRegressor(max_iter=150, learning_rate=0.08, "
        f"max_leaf_nodes=31, l2_regularization=1.0, random_state={SEED})",
        "baseline": "seasonal naive: the count in the same hour one week earlier",
        "parity_max_abs_diff": parity,
        "metrics": metrics,
        "test_mae_of_true_rate": oracle_test_mae(),
        "headline": {
            "metric": "mae",
            "value": metrics["test"]["model"]["mae"],
            "baseline": metrics["test"]["baseline"]["mae"],
            "higher_is_better": False,
        },
        "data": {
            "description": "Simulated order history (models/demand/history.py), seed "
            f"{SEED}: {WEEKS} weeks x 37 cells; per-cell level, business/residential daily "
            "cycles, weekends, trend, city-wide shocks, holidays, one-day local promotions; "
            "Poisson counts. Split by time: train weeks 5-15, validation week 16, test 17-20.",
            **{k: {"rows": len(v[1]), "orders": int(v[1].sum())} for k, v in sets.items()},
        },
        "selftest": {
            "inputs": x_te[:8].tolist(),
            "outputs": onnx_predict(onnx_bytes, x_te[:8]).tolist(),
            "tolerance": 1e-4,
        },
    }
    (out_dir / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (out_dir / "card.md").write_text(render(card))
    log.info(
        "demand: test MAE %.3f (seasonal naive %.3f) in %.1f s",
        card["headline"]["value"],
        card["headline"]["baseline"],
        time.monotonic() - t0,
    )
    return card


def render(card: dict[str, Any]) -> str:
    m, b = card["metrics"]["test"]["model"], card["metrics"]["test"]["baseline"]
    rows = [f"| {k} | **{m[k]:.3f}** | {b[k]:.3f} |" for k in ("mae", "wape", "p90_abs_error")]
    return "\n".join(
        [
            *cloud_card_head(card),
            "",
            "## Test metrics (weeks 17-20), orders per cell-hour",
            "",
            "| | model | seasonal naive |",
            "|---|---|---|",
            *rows,
            "",
            f"MAE of the true (simulated) rate, the floor: {card['test_mae_of_true_rate']:.3f}.",
            "",
            "## Data",
            "",
            card["data"]["description"],
            "",
            "## Inputs",
            "",
            *inputs_table(card),
            "",
            "## Limits",
            "",
            "Synthetic history only; real order history is not read from the database yet.",
            "",
        ]
    )


def evaluate_demand(root: Path) -> dict[str, Any]:
    """Test scores of the shipped ONNX file and the seasonal-naive forecast."""
    x, y = data()["test"]
    pred = onnx_predict((root / NAME / "model.onnx").read_bytes(), x)
    return {
        "version": VERSION,
        "model": scores(y, np.maximum(pred, 0.0)),
        "baseline": scores(y, x[:, FEATURE_NAMES.index("lag_168h")].astype(np.float64)),
    }
