"""Rebuild every edge model from scratch: simulate, extract, fit, export, score, write cards.

Seeded end to end: the same code gives the same windows, the same model, the same metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.training.datasets import WindowSet, split_windows
from models.training.evaluation import describe, score
from models.training.export import selftest_rows, to_onnx_bytes, write_card
from models.training.specs import SPECS, ModelSpec
from models.training.splits import split

log = logging.getLogger(__name__)
MODELS_ROOT = Path(__file__).resolve().parent.parent / "onnx"
SEED = 20261128
CLOUD_MODELS = ("demand", "eta")  # trained by models/demand and models/eta
PARITY_TOLERANCE = 1e-5  # largest |p_sklearn - p_onnx| allowed on the test windows
DATA_DESCRIPTION = (
    "Simulated trips (models/sim): road-like routes (urban, suburban, highway mixes with curves, "
    "junction stops, hills), drivers with normal limits below the harsh thresholds and injected "
    "harsh braking/acceleration/cornering and collisions, potholes and road/engine vibration, "
    "an IMU mounted in a uniformly random orientation per device with bias and noise; OBD-II with "
    "a gearbox, coolant and fuel models and injected overheating, misfire and fuel drops. Train, "
    "validation and test use disjoint trip seeds and disjoint devices (different mountings)."
)


def fit(spec: ModelSpec, ws: WindowSet) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    rng = np.random.default_rng(SEED)
    keep = (ws.y > 0) | ((ws.y == 0) & (rng.random(len(ws.y)) < spec.normal_keep))
    x, y = ws.x[keep], ws.y[keep]
    counts = np.bincount(y, minlength=len(spec.classes)).astype(np.float64)
    if np.any(counts == 0):  # the exported output would silently lose a column
        missing = [c for c, n in zip(spec.classes, counts, strict=True) if n == 0]
        raise ValueError(f"{spec.name}: no training windows of {missing}; use a larger split")
    weight = np.sqrt(counts.max() / np.maximum(counts, 1.0))  # between none and fully balanced
    model = HistGradientBoostingClassifier(
        max_iter=spec.max_iter,
        learning_rate=0.1,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=SEED,
    )
    # One OpenMP thread: on a shared 2-core machine two spinning threads ran 30x slower.
    with threadpool_limits(1):
        model.fit(x, y, sample_weight=weight[y])
    return model


def onnx_predict(onnx_bytes: bytes, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    probs: npt.NDArray[np.float32] = sess.run(["probabilities"], {"features": x})[0]
    return probs


def train_all(
    out_root: Path = MODELS_ROOT, scale: float = 1.0, names: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Train, export and card every model (or ``names``); returns each card."""
    wanted = list(names or [*SPECS, *CLOUD_MODELS])
    unknown = set(wanted) - {*SPECS, *CLOUD_MODELS}
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}")
    cards: dict[str, dict[str, Any]] = {}
    if "demand" in wanted:
        from models.demand.train import train_demand

        cards["demand"] = train_demand(out_root)
    if "eta" in wanted:
        from models.eta.train import train_eta

        cards["eta"] = train_eta(out_root, scale=scale)
    edge = [n for n in wanted if n in SPECS]
    if not edge:
        return cards
    t0 = time.monotonic()
    data = {
        s: split_windows(split(s, scale), keep_inputs=s != "train")
        for s in ("train", "val", "test")
    }
    log.info("simulated and windowed train/val/test in %.1f s", time.monotonic() - t0)
    for name in edge:
        spec = SPECS[name]
        tr, va, te = (data[s][name] for s in ("train", "val", "test"))
        t1 = time.monotonic()
        model = fit(spec, tr)
        fit_s = time.monotonic() - t1
        onnx_bytes = to_onnx_bytes(model, spec)
        out_dir = out_root / name
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "model.onnx").write_bytes(onnx_bytes)
        metrics = {}
        for label, ws in (("val", va), ("test", te)):
            pred = np.argmax(onnx_predict(onnx_bytes, ws.x), axis=1).astype(np.int64)
            metrics[label] = {
                "model": score(ws, pred, spec.classes),
                "baseline": score(ws, spec.baseline(ws), spec.classes),
            }
        test_probs = onnx_predict(onnx_bytes, te.x)
        parity = float(np.max(np.abs(test_probs - model.predict_proba(te.x.astype(np.float32)))))
        if parity > PARITY_TOLERANCE:
            raise RuntimeError(f"{name}: ONNX differs from sklearn by {parity:.2e} on test")
        st_x = selftest_rows(te.x, te.y, len(spec.classes))
        info: dict[str, Any] = {
            "parity_max_abs_diff": parity,
            "learner": f"sklearn HistGradientBoostingClassifier(max_iter={spec.max_iter}, "
            f"learning_rate=0.1, max_leaf_nodes=15, l2_regularization=1.0, random_state={SEED}), "
            f"sqrt-balanced class weights, {spec.normal_keep:.0%} of all-normal windows kept",
            "metrics": metrics,
            "headline": {
                "metric": "macro_f1_events",
                "value": metrics["test"]["model"]["macro_f1_events"],
                "baseline": metrics["test"]["baseline"]["macro_f1_events"],
                "higher_is_better": True,
            },
            "data": {
                "description": DATA_DESCRIPTION,
                "seed": SEED,
                "scale": scale,
                **{
                    s: {
                        **describe(data[s][name], spec.classes),
                        "devices": split(s, scale).devices,
                        "trip_seed_base": split(s, scale).base,
                    }
                    for s in ("train", "val", "test")
                },
            },
            "selftest": {
                "inputs": st_x.tolist(),
                "probabilities": onnx_predict(onnx_bytes, st_x).tolist(),
                "tolerance": 1e-4,
            },
        }
        cards[name] = write_card(out_dir, spec, info)
        log.info(
            "%s: test macro F1 %.3f (rules %.3f), fit %.1f s",
            name,
            info["headline"]["value"],
            info["headline"]["baseline"],
            fit_s,
        )
    return cards
