"""Benchmark: the edge agent: memory, CPU, NMEA and outbox rates, reporting-policy figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer

REPO = Path(__file__).resolve().parents[2]


def nmea_rate(budget_s: float = 3.0) -> dict[str, Any]:
    """Sentences per CPU-second through the agent's decoder, on the real captures."""
    from edge_agent.gps.decoder import NmeaDecoder

    logs = sorted((REPO / "tests" / "data" / "nmea" / "gpsd").glob("*.log"))
    data = [p.read_bytes() for p in logs]
    best = float("inf")
    sentences = 0
    deadline = time.perf_counter() + budget_s
    passes = 0
    while passes < 2 or time.perf_counter() < deadline:
        dec = NmeaDecoder()
        t0 = time.process_time()
        for blob in data:
            for i in range(0, len(blob), 1024):
                dec.feed(blob[i : i + 1024])
            dec.flush()
        best = min(best, time.process_time() - t0)
        sentences = dec.counters["sentences"]
        passes += 1
    return {"nmea_sentences_per_s": round(sentences / best), "nmea_captures": len(logs)}


def bytes_per_fix(batch: int = 10) -> dict[str, Any]:
    """Bytes per fix as the agent sends them: fixes of the real captures (those with at least
    ``batch`` fixes), seqs from an outbox created now, 10-fix batches, MQTT 5 PUBLISH with the
    topic alias after the first batch of a connection (one connection per capture)."""
    from edge_agent.gps.decoder import NmeaDecoder
    from edge_agent.pipeline import to_wire_fix
    from flota_wire import Channel, TelemetryBatch, VehicleRef, encode, topic
    from flota_wire.mqtt import publish_size

    t = topic("acme", "van-0042", Channel.TELEMETRY)
    seq = int(time.time() * 100)
    total = fixes = 0
    for path in sorted((REPO / "tests" / "data" / "nmea" / "gpsd").glob("*.log")):
        dec = NmeaDecoder()
        got = [f for f in [*dec.feed(path.read_bytes()), *dec.flush()] if f.time_s is not None]
        if len(got) < batch:
            continue
        rows = []
        for f in got:
            w = to_wire_fix(f, f.time_s or 0.0)
            rows.append(type(w)(seq, *[getattr(w, k) for k in w.__slots__[1:]]))
            seq += 1
        for i in range(0, len(rows), batch):
            payload = encode(
                TelemetryBatch(VehicleRef("acme", "van-0042"), tuple(rows[i : i + batch]))
            )
            total += publish_size(t, len(payload), mqtt5=True, alias=i > 0)
        fixes += len(rows)
    return {"bytes_per_fix": round(total / fixes, 2), "bytes_per_fix_fixes": fixes}


def outbox_rates(tmp: Path, n: int = 5000) -> dict[str, Any]:
    """Accepted fixes per second (wall: fsync is the cost), one transaction per batch."""
    from edge_agent.outbox import Outbox
    from flota_wire.tracesim import simulate_city

    fixes = simulate_city(n, seed=2)
    out: dict[str, Any] = {}
    for batch in (1, 10, 100):
        box = Outbox(tmp / f"rate-{batch}.sqlite")
        count = min(len(fixes), 500 if batch == 1 else len(fixes))
        t0 = time.perf_counter()
        for i in range(0, count, batch):
            box.add_fixes(fixes[i : i + batch])
        out[f"outbox_fixes_per_s_batch{batch}"] = round(count / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for seq in range(1, count + 1, 10):
            box.ack("telemetry", [(seq, seq + 9)])
        out[f"outbox_ack_tx_per_s_{batch}"] = round(count / 10 / (time.perf_counter() - t0))
        box.close()
    return out


def reporting_figures(seconds: float = 3600, seed: int = 1) -> dict[str, Any]:
    from edge_agent.reporting import ReportingConfig, Sample, evaluate
    from flota_wire.tracesim import simulate_city

    fixes = simulate_city(seconds, seed=seed)
    trace = [Sample(f.time_s, f.lat, f.lon, f.speed_mps, f.track_deg) for f in fixes]
    err = evaluate(trace, ReportingConfig())
    return {
        "reporting_epochs": err.epochs,
        "reporting_reported": err.reported,
        "reporting_reduction": round(err.reduction, 2),
        "path_error_max_m": round(err.max_m, 2),
        "path_error_mean_m": round(err.mean_m, 2),
        "path_error_p95_m": round(err.p95_m, 2),
    }


def _fill_outbox(state: Path, n: int) -> None:
    from edge_agent.outbox import Outbox
    from flota_wire.tracesim import simulate_city

    box = Outbox(state / "outbox.sqlite")
    fixes = simulate_city(n / 1.0, seed=5, dropout=0.0)[:n]
    for i in range(0, len(fixes), 5000):
        box.add_fixes(fixes[i : i + 5000])
    box.close()


def agent_process(
    seconds: float, queued: int, warmup_s: float, runtime: str = "auto"
) -> dict[str, Any]:
    """Run a real agent in a fresh interpreter against a scripted receiver (10 Hz) and the MCU
    simulator (100 Hz IMU), both ONNX models loaded, ``queued`` fixes on disk; measure it."""
    from edge_agent.simpeer import GpsPeer
    from firmware_bridge.mcu.simulator import McuSimulator
    from flota_wire.tracesim import simulate_city

    with tempfile.TemporaryDirectory(prefix="flota-bench-edge-") as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        _fill_outbox(state, queued)
        # A mounting already learnt (as after a first trip), so every IMU window is classified.
        aligner = {
            "gravity": [0.0, 0.0, 9.81], "gyro_bias": [0.0, 0.0, 0.0],
            "fwd_evidence": [1.0, 0.0, 0.0], "left_evidence": [0.0, 1.0, 0.0], "blocks": 1000,
        }  # fmt: skip
        (state / "aligner.json").write_text(json.dumps(aligner))
        gps = GpsPeer()
        mcu = McuSimulator(str(Path(tmp) / "mcu")).start()
        feeder = gps.stream(simulate_city(seconds + warmup_s + 60, rate_hz=10, seed=9), 10.0)
        models = REPO / "models" / "onnx"
        env = {
            **os.environ,
            "FLOTA_AGENT_TENANT": "bench",
            "FLOTA_AGENT_VEHICLE": "bench-1",
            "FLOTA_AGENT_MQTT_HOST": "127.0.0.1",
            "FLOTA_AGENT_MQTT_PORT": "9",  # nothing listens: the uplink stays offline
            "FLOTA_AGENT_MQTT_USERNAME": "bench",
            "FLOTA_AGENT_MQTT_PASSWORD": "bench-only-not-a-secret",
            "FLOTA_AGENT_GPS_URL": gps.path,
            "FLOTA_AGENT_GPS_BAUD": "9600",
            "FLOTA_AGENT_MCU_URL": str(Path(tmp) / "mcu"),
            "FLOTA_AGENT_STATE_DIR": str(state),
            "FLOTA_AGENT_STATS_INTERVAL_S": "3600",
            "FLOTA_AGENT_INFERENCE_RUNTIME": runtime,
            "PYTHONPATH": str(REPO),
        }
        if (models / "harsh_driving" / "card.json").exists():
            env["FLOTA_AGENT_MODELS_DIR"] = str(models)
        # a lean child: the agent's imports only (no typer, no flota CLI), as a vehicle runs it
        code = f"from edge_agent.benchprobe import child; child({seconds!r}, {warmup_s!r})"
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                capture_output=True,
                text=True,
                timeout=seconds + warmup_s + 120,
                check=False,
            )
        finally:
            mcu.stop()
            gps.close()
            feeder.join(2)
        if proc.returncode != 0:
            raise RuntimeError(f"agent child failed:\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result


def run(
    json_out: bool = typer.Option(False, "--json", help="One JSON line."),
    seconds: float = typer.Option(30.0, "--seconds", help="CPU measurement window (s)."),
    queued: int = typer.Option(100_000, "--queued", help="Fixes queued in the outbox."),
    warmup: float = typer.Option(8.0, "--warmup", help="Seconds before measuring."),
    runtime: str = typer.Option(
        "onnxruntime",
        "--runtime",
        help="The agent's inference runtime: onnxruntime (its default), numpy, "
        "auto; the other one (numpy, or onnxruntime) is measured briefly beside it.",
    ),
) -> None:
    """Memory and CPU of a running agent, NMEA and outbox rates, reporting-policy figures."""
    figures: dict[str, Any] = {}
    figures.update(nmea_rate())
    figures.update(reporting_figures())
    figures.update(bytes_per_fix())
    with tempfile.TemporaryDirectory(prefix="flota-bench-outbox-") as tmp:
        figures.update(outbox_rates(Path(tmp)))
    figures.update(agent_process(seconds, queued, warmup, runtime))
    figures["inference_runtime"] = runtime
    # the same agent with the other runtime, briefly: memory and inference cost side by side
    other = "numpy" if runtime == "onnxruntime" else "onnxruntime"  # auto runs numpy here
    alt = agent_process(5.0, queued, warmup, other)
    for key in ("rss_mb", "rss_anon_mb", "cpu_percent", "inference_cpu_p99_ms", "inference_p99_ms"):
        figures[f"{key}_with_{other}"] = alt[key]
    figures["goals"] = {
        "rss_mb": 80, "cpu_percent": 2.0, "inference_p99_ms": 1.0, "bytes_per_fix": 8.0,
    }  # fmt: skip
    if json_out:
        typer.echo(json.dumps(figures))
    else:
        for key, value in figures.items():
            typer.echo(f"{key:34s} {value}")
