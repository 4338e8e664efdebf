"""Train, export and score the ETA model against the optimizer's travel-time estimate.

Data: the seeded fleet simulator (models/eta/fleet.py), split by vehicle (disjoint drivers,
depots and days), or legs read from the database (`models.eta.db`), split by time (oldest 70%
train, next 10% validation, newest 20% test). Metrics are on test.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud.models_service.eta_features import FEATURE_NAMES, Leg, features
from models.eta.dataset import (
    REF_CIRCUITY,
    REF_FLOOR_S,
    REF_SPEED_MPS,
    LegRecord,
    feature_matrix,
    from_sim,
    targets,
    to_seconds,
)
from models.eta.export import INPUT, OUTPUTS, to_onnx_bytes
from models.eta.fleet import simulate

log = logging.getLogger(__name__)
NAME = "eta"
VERSION = "1.0.0"
SEED = 20261128
DAYS = 21
SIM_SPLITS = {"train": range(60), "val": range(60, 70), "test": range(70, 100)}
PARITY_TOLERANCE = 1e-5
F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
Predict = Callable[[F32], tuple[F64, F64]]


def sim_splits(
    scale: float = 1.0, names: Sequence[str] = tuple(SIM_SPLITS)
) -> dict[str, list[LegRecord]]:
    out = {}
    for split in names:
        vehicles = SIM_SPLITS[split]
        n = max(2, round(len(vehicles) * scale))
        out[split] = from_sim(simulate(SEED, range(vehicles.start, vehicles.start + n), DAYS))
    return out


def time_splits(records: Sequence[LegRecord]) -> dict[str, list[LegRecord]]:
    """Oldest 70% train, next 10% validation, newest 20% test (by departure time)."""
    recs = sorted(records, key=lambda r: r.depart_s)
    a, b = int(len(recs) * 0.7), int(len(recs) * 0.8)
    return {"train": recs[:a], "val": recs[a:b], "test": recs[b:]}


def optimizer_travel_s(records: Sequence[LegRecord]) -> F64:
    """The baseline: the optimizer's own estimate, through its public matrix provider."""
    from cloud.optimizer.matrix import ConstantSpeed, GreatCircleMatrix
    from cloud.optimizer.model import Location

    out = np.empty(len(records))
    for i, r in enumerate(records):
        how = int(features([r.leg])[0, FEATURE_NAMES.index("hour_of_week")])
        m = GreatCircleMatrix(
            circuity=REF_CIRCUITY, speeds=ConstantSpeed(REF_SPEED_MPS), hour_of_week=how
        )
        _, dur = m.matrices(
            [Location(r.origin_lon, r.origin_lat), Location(r.dest_lon, r.dest_lat)]
        )
        out[i] = dur[0, 1]
    return out


def _err(y: F64, pred: F64) -> dict[str, float]:
    e = np.abs(y - pred)
    return {"mae_s": round(float(e.mean()), 2), "p90_s": round(float(np.percentile(e, 90)), 2)}


def _arrivals(records: Sequence[LegRecord], predict: Predict) -> tuple[F64, F64]:
    """(actual, predicted) arrival time at each stop, counted from its route's start, with the
    predicted departure times feeding the next leg's features (as the service does)."""
    routes: dict[str, list[LegRecord]] = {}
    for r in records:
        routes.setdefault(r.route, []).append(r)
    seqs = [sorted(v, key=lambda r: r.depart_s) for v in routes.values()]
    seqs = [s for s in seqs if all(np.isfinite(r.dwell_s) for r in s[:-1])]
    actual, pred = [], []
    clock = np.array([s[0].depart_s for s in seqs])
    start = clock.copy()
    for k in range(max((len(s) for s in seqs), default=0)):
        idx = [i for i, s in enumerate(seqs) if len(s) > k]
        legs = [seqs[i][k] for i in idx]
        x = features(
            [
                Leg(r.origin_lat, r.origin_lon, r.dest_lat, r.dest_lon, clock[i])
                for r, i in zip(legs, idx, strict=True)
            ]
        )
        t_out, d_out = predict(x.astype(np.float32))
        travel, dwell = to_seconds(x, t_out, d_out)
        for j, (r, i) in enumerate(zip(legs, idx, strict=True)):
            actual.append(r.depart_s + r.travel_s - seqs[i][0].depart_s)
            pred.append(clock[i] + travel[j] - start[i])
            clock[i] += travel[j] + dwell[j]
    return np.array(actual), np.array(pred)


def scores(records: Sequence[LegRecord], predict: Predict, dwell_const_s: float) -> dict[str, Any]:
    """Model and baseline errors (seconds) on ``records``."""
    x = feature_matrix(records)
    t_out, d_out = predict(x.astype(np.float32))
    travel_p, dwell_p = to_seconds(x, t_out, d_out)
    travel = np.array([r.travel_s for r in records])
    dwell = np.array([r.dwell_s for r in records])
    known = np.isfinite(dwell)
    base_t = optimizer_travel_s(records)
    base_d = np.full(len(records), dwell_const_s)

    act, arr_m = _arrivals(records, predict)

    def base_predict(x32: F32) -> tuple[F64, F64]:  # the baseline as model outputs
        x64 = x32.astype(np.float64)
        ref = np.maximum(x64[:, 0] * REF_CIRCUITY / REF_SPEED_MPS, REF_FLOOR_S)
        bt = x64[:, 0] * REF_CIRCUITY / REF_SPEED_MPS
        return np.log(np.maximum(bt, 1e-9) / ref), np.full(len(x32), np.log(dwell_const_s / 60))

    _, arr_b = _arrivals(records, base_predict)
    return {
        "model": {
            "travel": _err(travel, travel_p),
            "dwell": _err(dwell[known], dwell_p[known]),
            "stop": _err(travel[known] + dwell[known], travel_p[known] + dwell_p[known]),
            "arrival": _err(act, arr_m),
        },
        "baseline": {
            "travel": _err(travel, base_t),
            "dwell": _err(dwell[known], base_d[known]),
            "stop": _err(travel[known] + dwell[known], base_t[known] + base_d[known]),
            "arrival": _err(act, arr_b),
        },
        "legs": len(records),
        "legs_with_dwell": int(known.sum()),
    }


def fit(x: F64, y: F64, weight: F64 | None = None) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    model = HistGradientBoostingRegressor(
        loss="absolute_error",
        max_iter=200,
        learning_rate=0.08,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=SEED,
    )
    with threadpool_limits(1):
        model.fit(x.astype(np.float32), y, sample_weight=weight)
    return model


def onnx_session(onnx_bytes: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def onnx_predictor(onnx_bytes: bytes) -> Predict:
    sess = onnx_session(onnx_bytes)

    def predict(x: F32) -> tuple[F64, F64]:
        t, d = sess.run(list(OUTPUTS), {INPUT: x})
        return np.asarray(t, np.float64).ravel(), np.asarray(d, np.float64).ravel()

    return predict


def train_eta(
    out_root: Path, records: Sequence[LegRecord] | None = None, scale: float = 1.0
) -> dict[str, Any]:
    """Fit on simulated legs (``records`` None) or on the given ones (e.g. from the database)."""
    t0 = time.monotonic()
    source = "simulator" if records is None else "database"
    sets = sim_splits(scale) if records is None else time_splits(records)
    tr = sets["train"]
    if len(tr) < 50:
        raise ValueError(f"eta: {len(tr)} training legs; need at least 50")
    x_tr = feature_matrix(tr)
    y_t, y_d = targets(tr, x_tr)
    known = np.isfinite(y_d)
    if known.sum() < 20:
        raise ValueError("eta: fewer than 20 training legs with a known dwell")
    travel_m = fit(x_tr, y_t, weight=np.maximum(x_tr[:, 0] * REF_CIRCUITY / REF_SPEED_MPS, 60))
    dwell_m = fit(x_tr[known], y_d[known])
    dwell_const = float(np.median(np.array([r.dwell_s for r in tr])[known]))
    onnx_bytes = to_onnx_bytes(
        travel_m, dwell_m, len(FEATURE_NAMES), f"{NAME} {VERSION}: travel and dwell per stop"
    )
    out_dir = out_root / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(onnx_bytes)
    predict = onnx_predictor(onnx_bytes)
    metrics = {s: scores(sets[s], predict, dwell_const) for s in ("val", "test") if sets[s]}
    x_te = feature_matrix(sets["test"]).astype(np.float32)
    t_o, d_o = predict(x_te)
    parity = max(
        float(np.max(np.abs(t_o - travel_m.predict(x_te)))),
        float(np.max(np.abs(d_o - dwell_m.predict(x_te)))),
    )
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"{NAME}: ONNX differs from sklearn by {parity:.2e} on test")
    from models.eta.card import make_card, render

    card = make_card(
        onnx_bytes=onnx_bytes,
        out_dir=out_dir,
        version=VERSION,
        metrics=metrics,
        parity=parity,
        dwell_const=dwell_const,
        source=source,
        sizes={k: len(v) for k, v in sets.items()},
        selftest_x=x_te[:8],
        selftest_y=[v[:8].tolist() for v in (t_o, d_o)],
        scale=scale,
    )
    (out_dir / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (out_dir / "card.md").write_text(render(card))
    h = card["headline"]
    log.info(
        "eta: test %s %.1f (optimizer %.1f) from %s in %.1f s",
        h["metric"],
        h["value"],
        h["baseline"],
        source,
        time.monotonic() - t0,
    )
    return card


def evaluate_eta(root: Path, scale: float = 1.0) -> dict[str, Any]:
    """Test scores of the shipped ONNX file and the optimizer's estimate (simulated test set)."""
    card = json.loads((root / NAME / "card.json").read_text())
    predict = onnx_predictor((root / NAME / "model.onnx").read_bytes())
    test = sim_splits(scale, ("test",))["test"]
    s = scores(test, predict, float(card["baseline_dwell_s"]))
    return {"version": card["version"], "model": s["model"], "baseline": s["baseline"]}
