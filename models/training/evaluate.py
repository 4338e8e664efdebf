"""Score the shipped ONNX models, through the agent's own runtime, on the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.inference.config import OnnxModelConfig
from edge_agent.inference.runtime import OnnxClassifier
from models.training.datasets import split_windows
from models.training.evaluation import score
from models.training.specs import SPECS
from models.training.splits import split
from models.training.train import MODELS_ROOT


def evaluate_shipped(root: Path = MODELS_ROOT, scale: float = 1.0) -> dict[str, dict[str, Any]]:
    """Per model: test scores of the ONNX model and of the rule baseline on the same windows."""
    data = split_windows(split("test", scale), keep_inputs=True)
    out: dict[str, dict[str, Any]] = {}
    from models.demand.train import evaluate_demand

    out["demand"] = evaluate_demand(root)
    from models.eta.train import evaluate_eta

    out["eta"] = evaluate_eta(root, scale=scale)
    for name, spec in SPECS.items():
        clf = OnnxClassifier(OnnxModelConfig(name=name, path=root / name))
        ws = data[name]
        pred = np.argmax(clf.predict_features(ws.x), axis=1).astype(np.int64)
        out[name] = {
            "version": clf.version,
            "model": score(ws, pred, spec.classes),
            "baseline": score(ws, spec.baseline(ws), spec.classes),
        }
    return out


def headline(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The one-line-per-model summary `flota models evaluate --json` prints."""
    out = {}
    for name, r in results.items():
        if name == "eta":  # per stop, travel + dwell, seconds
            out[name] = {
                "metric": "stop_mae_s",
                "value": r["model"]["stop"]["mae_s"],
                "baseline": r["baseline"]["stop"]["mae_s"],
                "higher_is_better": False,
            }
            continue
        metric = "mae" if name == "demand" else "macro_f1_events"
        out[name] = {
            "metric": metric,
            "value": r["model"][metric],
            "baseline": r["baseline"][metric],
            "higher_is_better": metric != "mae",
        }
    return out
