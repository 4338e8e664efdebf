"""Benchmark: wire size (bytes per fix, MQTT framing included) and codec speed."""

from __future__ import annotations

import json
import time
from typing import Any

import typer


def _best_rate(fn: Any, items: list[Any], count: int, budget_s: float) -> float:
    """Items per CPU-second of this process, fastest of several passes: the machine is shared
    and noisy, and CPU time leaves out the time other processes held the core."""
    best = float("inf")
    deadline = time.perf_counter() + budget_s
    passes = 0
    while passes < 3 or time.perf_counter() < deadline:
        t0 = time.process_time()
        for item in items:
            fn(item)
        best = min(best, time.process_time() - t0)
        passes += 1
    return count / max(best, 1e-9)


def measure(
    *,
    seconds: float,
    rate_hz: float,
    batch_s: float,
    seed: int,
    tenant: str,
    vehicle: str,
    budget_s: float,
) -> dict[str, Any]:
    """Figures for one trace: sizes exactly, speeds as best-of-passes."""
    from flota_wire import Channel, Fix, VehicleRef, topic
    from flota_wire.mqtt import publish_size
    from flota_wire.telemetry import (
        decode_telemetry,
        decode_telemetry_columns,
        encode_telemetry,
    )
    from flota_wire.tracesim import batches, simulate_city

    fixes = simulate_city(seconds, rate_hz=rate_hz, seed=seed)
    per_batch = round(rate_hz * batch_s)
    chunks = list(batches(fixes, per_batch))
    payloads = [encode_telemetry(c) for c in chunks]
    n = len(fixes)
    t = topic(tenant, vehicle, Channel.TELEMETRY)
    payload_bytes = sum(map(len, payloads))

    def framed(**kw: bool) -> float:
        return sum(publish_size(t, len(p), **kw) for p in payloads) / n

    pos_only = [[Fix(f.seq, f.time_us, f.lat_e6, f.lon_e6, f.fix_mode) for f in c] for c in chunks]
    pos_bytes = sum(len(encode_telemetry(c)) for c in pos_only)
    json_bytes = sum(
        len(json.dumps([[getattr(f, k) for k in f.__slots__] for f in c], separators=(",", ":")))
        for c in chunks
    )
    vref = VehicleRef(tenant, vehicle)
    return {
        "trace": f"city, {rate_hz:g} Hz, {batch_s:g} s batches, {seconds:g} s, seed {seed}",
        "fixes": n,
        "batches": len(chunks),
        "fixes_per_batch": round(n / len(chunks), 2),
        "topic": t,
        "bytes_per_fix": round(payload_bytes / n, 3),
        "bytes_per_fix_mqtt": {
            "mqtt311": round(framed(), 3),
            "mqtt5": round(framed(mqtt5=True), 3),
            "mqtt5_topic_alias": round(framed(mqtt5=True, alias=True), 3),
        },
        "deflated_batches": sum(p[0] & 0x08 != 0 for p in payloads),
        "position_only_bytes_per_fix": round(pos_bytes / n, 3),
        "json_bytes_per_fix": round(json_bytes / n, 1),
        "encode_fixes_per_s": round(_best_rate(encode_telemetry, chunks, n, budget_s)),
        "decode_fixes_per_s": round(_best_rate(decode_telemetry_columns, payloads, n, budget_s)),
        "decode_to_objects_fixes_per_s": round(
            _best_rate(lambda p: decode_telemetry(p, vref), payloads, n, budget_s)
        ),
    }


def run(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
    seconds: float = typer.Option(3600, help="Length of the simulated drive, seconds."),
    seed: int = typer.Option(1, help="Seed of the simulated drive."),
    tenant: str = typer.Option("acme", help="Tenant id used in the topic."),
    vehicle: str = typer.Option("van-0042", help="Vehicle id used in the topic."),
    budget: float = typer.Option(2.0, help="Seconds spent timing each codec figure."),
) -> None:
    """Bytes per fix (payload, and with QoS 1 PUBLISH framing) and codec speed."""
    started = time.time()
    one = measure(
        seconds=seconds, rate_hz=1, batch_s=10, seed=seed, tenant=tenant, vehicle=vehicle,
        budget_s=budget,
    )  # fmt: skip
    ten = measure(
        seconds=min(seconds, 1800), rate_hz=10, batch_s=10, seed=seed, tenant=tenant,
        vehicle=vehicle, budget_s=budget,
    )  # fmt: skip
    goal = 8.0
    result = {
        "bench": "wire",
        "date": time.strftime("%Y-%m-%d", time.gmtime(started)),
        "goal_bytes_per_fix_mqtt": goal,
        "meets_goal_with_topic_alias": one["bytes_per_fix_mqtt"]["mqtt5_topic_alias"] <= goal,
        "meets_goal_without_topic_alias": one["bytes_per_fix_mqtt"]["mqtt5"] <= goal,
        **one,
        "hz10": ten,
        "elapsed_s": round(time.time() - started, 1),
    }
    if as_json:
        typer.echo(json.dumps(result, separators=(",", ":")))
        return
    for label, r in (("1 Hz, 10-fix batches", one), ("10 Hz, 100-fix batches", ten)):
        m = r["bytes_per_fix_mqtt"]
        typer.echo(f"{label}: {r['fixes']} fixes in {r['batches']} batches on {r['topic']}")
        typer.echo(f"  payload            {r['bytes_per_fix']:.2f} bytes/fix")
        typer.echo(f"  MQTT 3.1.1 QoS 1   {m['mqtt311']:.2f} bytes/fix")
        typer.echo(f"  MQTT 5 QoS 1       {m['mqtt5']:.2f} bytes/fix")
        typer.echo(f"  MQTT 5 + alias     {m['mqtt5_topic_alias']:.2f} bytes/fix (goal {goal:g})")
        typer.echo(f"  positions only     {r['position_only_bytes_per_fix']:.2f} bytes/fix")
        typer.echo(f"  JSON (for scale)   {r['json_bytes_per_fix']:.1f} bytes/fix")
        typer.echo(
            f"  encode {r['encode_fixes_per_s']:,} fixes/s, decode {r['decode_fixes_per_s']:,} "
            f"fixes/s (columns), {r['decode_to_objects_fixes_per_s']:,} fixes/s (Fix objects)"
        )
