"""Benchmark: edge-model inference latency per window (p50, p99; onnxruntime, one thread) and
the resident memory of a process with both models loaded; the cloud models (ETA per leg, demand
per cell) in-process; and the model service over HTTP on 127.0.0.1 (a separate process, so the
client does not share its interpreter), per request, with its resident memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
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
    requests: int = typer.Option(500, min=20, help="HTTP requests timed per service case."),
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
    out.update(_cloud_models(windows))
    out["service"] = _service(requests)
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
    for name in ("eta", "demand"):
        r = out[name]
        typer.echo(
            f"{name} (in process): onnx p50 {r['onnx_only']['p50_us']} us p99 "
            f"{r['onnx_only']['p99_us']} us; features+onnx p50 {r['features_plus_onnx']['p50_us']}"
            f" us p99 {r['features_plus_onnx']['p99_us']} us; batch of 100: "
            f"{r['batch100_us_per_item']} us per {r['item']}"
        )
    svc = out["service"]
    for case, r in svc["cases"].items():
        typer.echo(
            f"service {case}: p50 {r['p50_us'] / 1000:.2f} ms p99 {r['p99_us'] / 1000:.2f} ms "
            f"({r['requests_per_s']:.0f} requests/s, one client)"
        )
    typer.echo(f"service resident memory: {svc['rss_mb']} MB")
    m = out["memory"]
    typer.echo(
        f"resident memory: interpreter {m['rss_mb_interpreter']} MB, numpy "
        f"{m['rss_mb_with_numpy']} MB, both models loaded {m['rss_mb_with_models']} MB"
    )


def _cloud_models(n: int) -> dict[str, Any]:
    """ETA per leg and demand per cell, through the service's own loading and feature code."""
    import numpy as np

    from cloud.models_service.demand_features import features_for_hour
    from cloud.models_service.loaded import load_model
    from cloud.models_service.predict import LegQuery, predict_eta
    from models.demand.history import simulate_history
    from models.eta.dataset import feature_matrix
    from models.eta.train import sim_splits
    from models.training.train import MODELS_ROOT

    legs = sim_splits(0.1, ("test",))["test"]
    eta = load_model(MODELS_ROOT / "eta", "eta")
    x = feature_matrix(legs).astype(np.float32)
    hist = simulate_history(20261128, 5)
    demand = load_model(MODELS_ROOT / "demand", "demand")
    t_end = hist.counts.shape[0]
    dx = np.stack([features_for_hour(hist.counts[:t_end, c], 7, 1) for c in range(37)])
    out: dict[str, Any] = {}
    for name, model, rows, item in (("eta", eta, x, "leg"), ("demand", demand, dx, "cell")):
        onnx_ns, full_ns = [], []
        for i in range(n):
            row = rows[i % len(rows) : i % len(rows) + 1]
            t0 = time.perf_counter_ns()
            model.run(row)
            onnx_ns.append(time.perf_counter_ns() - t0)
        for i in range(n):
            j = i % len(rows)
            t0 = time.perf_counter_ns()
            if name == "eta":
                r = legs[j]
                q = LegQuery(r.origin_lat, r.origin_lon, r.dest_lat, r.dest_lon, None)
                predict_eta(model, r.depart_s, [q])
            else:
                model.run(features_for_hour(hist.counts[: t_end - j, j % 37], 7, 1)[None, :])
            full_ns.append(time.perf_counter_ns() - t0)
        batch = np.resize(rows, (100, rows.shape[1])).astype(np.float32)
        t0 = time.perf_counter_ns()
        for _ in range(20):
            model.run(batch)
        per_item = (time.perf_counter_ns() - t0) / 20 / 100 / 1000
        out[name] = {
            "item": item,
            "onnx_only": _percentiles(onnx_ns),
            "features_plus_onnx": _percentiles(full_ns),
            "batch100_us_per_item": round(per_item, 2),
        }
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVE = (
    "import sys; from cloud.models_service.server import serve; "
    "from cloud.models_service.settings import ModelsServiceSettings as S; "
    "serve(S(host='127.0.0.1', port=int(sys.argv[1])))"
)


def _service(n: int) -> dict[str, Any]:
    """Requests to a service in its own process, one client, one request at a time."""
    from datetime import UTC, datetime

    import numpy as np

    from cloud.models_service.client import ModelServiceClient
    from cloud.models_service.errors import ClientError

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = ModelServiceClient(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.health().get("status") == "ok":
                    break
            except ClientError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the model service did not start")
            time.sleep(0.1)
        depart = datetime(2026, 11, 30, 7, tzinfo=UTC)
        rng = np.random.default_rng(1)
        stops = [(60.17 + rng.normal(0, 0.02), 24.94 + rng.normal(0, 0.04)) for _ in range(10)]
        hist = [float(v) for v in rng.poisson(1.5, 700)]
        import h3

        cells = sorted(h3.grid_disk(h3.latlng_to_cell(60.1699, 24.9384, 8), 3))  # 37 cells
        cases: dict[str, Callable[[], object]] = {
            "eta_1_leg": lambda: client.eta(depart, stops[:1], origin=(60.17, 24.94)),
            "eta_10_legs": lambda: client.eta(depart, stops, origin=(60.17, 24.94)),
            "demand_1_cell": lambda: client.demand(depart, {cells[0]: hist}),
            f"demand_{len(cells)}_cells": lambda: client.demand(depart, dict.fromkeys(cells, hist)),
        }
        out: dict[str, Any] = {"requests": n, "cases": {}}
        for case, call in cases.items():
            for _ in range(10):
                call()
            ns = []
            t_all = time.perf_counter()
            for _ in range(n):
                t0 = time.perf_counter_ns()
                call()
                ns.append(time.perf_counter_ns() - t0)
            rate = n / (time.perf_counter() - t_all)
            out["cases"][case] = {**_percentiles(ns), "requests_per_s": round(rate, 1)}
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        out["rss_mb"] = round(rss / 1024, 1)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)
