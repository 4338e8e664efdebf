"""Benchmark: edge-model inference latency per window (p50, p99; onnxruntime, one thread) and
the resident memory of a process with both models loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import typer

_RSS_PROBE = """
import json, sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
base = rss()
import numpy
after_numpy = rss()
from edge_agent.inference import OnnxModelConfig, ModelSlot
slots = [ModelSlot(OnnxModelConfig(name=n, path=sys.argv[1] + '/' + n))
         for n in ('harsh_driving', 'engine_anomaly')]
loaded = rss()
print(json.dumps({'rss_mb_interpreter': round(base, 1), 'rss_mb_with_numpy': round(after_numpy, 1),
                  'rss_mb_with_models': round(loaded, 1),
                  'sklearn_imported': 'sklearn' in sys.modules}))
"""


def _percentiles(ns: list[int]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(ns, dtype=np.float64) / 1000.0
    return {
        "p50_us": round(float(np.percentile(a, 50)), 1),
        "p99_us": round(float(np.percentile(a, 99)), 1),
    }


def run(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    windows: int = typer.Option(3000, min=100, help="Windows timed per model."),
) -> None:
    import numpy as np

    from edge_agent.inference import OnnxModelConfig
    from edge_agent.inference.runtime import OnnxClassifier
    from models.training.datasets import split_windows
    from models.training.splits import Split
    from models.training.train import MODELS_ROOT

    data = split_windows(Split("bench", 3_000_000, devices=1, trips_per_device=2), keep_inputs=True)
    out: dict[str, Any] = {"threads": 1, "provider": "CPUExecutionProvider"}
    for name in ("harsh_driving", "engine_anomaly"):
        clf = OnnxClassifier(OnnxModelConfig(name=name, path=MODELS_ROOT / name))
        ws = data[name]
        n = len(ws.x)
        onnx_ns, full_ns = [], []
        for i in range(windows):
            row = ws.x[i % n : i % n + 1]
            t0 = time.perf_counter_ns()
            clf.predict_features(row)
            onnx_ns.append(time.perf_counter_ns() - t0)
        for i in range(windows):
            j = i % n
            if ws.aligned is not None:
                from edge_agent.inference.imu_features import AlignedWindows

                a = ws.aligned
                win: Any = AlignedWindows(
                    a.lin[j : j + 1], a.yaw[j : j + 1], a.gyro_norm[j : j + 1]
                )
            else:
                assert ws.raw is not None
                win = ws.raw[j : j + 1]
            t0 = time.perf_counter_ns()
            clf.classify(win)
            full_ns.append(time.perf_counter_ns() - t0)
        out[name] = {
            "windows": windows,
            "onnx_only": _percentiles(onnx_ns),
            "features_plus_onnx": _percentiles(full_ns),
            "batch_check": bool(np.all(np.isfinite(clf.predict_features(ws.x[:64])))),
        }
    probe = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(MODELS_ROOT)],
        capture_output=True,
        text=True,
        check=True,
    )
    out["memory"] = json.loads(probe.stdout.strip().splitlines()[-1])
    if as_json:
        typer.echo(json.dumps(out, sort_keys=True))
        return
    for name in ("harsh_driving", "engine_anomaly"):
        r = out[name]
        typer.echo(
            f"{name}: onnx p50 {r['onnx_only']['p50_us']} us p99 {r['onnx_only']['p99_us']} us;"
            f" features+onnx p50 {r['features_plus_onnx']['p50_us']} us "
            f"p99 {r['features_plus_onnx']['p99_us']} us"
        )
    m = out["memory"]
    typer.echo(
        f"resident memory: interpreter {m['rss_mb_interpreter']} MB, numpy "
        f"{m['rss_mb_with_numpy']} MB, both models loaded {m['rss_mb_with_models']} MB"
    )
