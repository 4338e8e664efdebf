"""Benchmark: wire size (bytes per fix, MQTT framing included) and codec speed."""

from __future__ import annotations

import json
import time
from pathlib import Path
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


def nmea_captures(paths: list[Path]) -> dict[str, Any]:
    """Bytes per fix for real receiver captures, decoded by the agent's own NMEA decoder and
    sent in 10-fix batches; a GGA-only capture (no date) is dated 2026-01-01."""
    from edge_agent.gps.decoder import NmeaDecoder
    from flota_wire import Fix
    from flota_wire.mqtt import publish_size
    from flota_wire.telemetry import decode_telemetry_columns, encode_telemetry
    from flota_wire.tracesim import batches

    day_s = 1_767_225_600  # 2026-01-01T00:00:00Z
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.glob("*.log")))
    n = payload = alias = 0
    used = 0
    for path in files:
        decoder = NmeaDecoder(accept_missing_checksum=True, skip_comments=True)
        gps = decoder.feed(path.read_bytes()) + decoder.flush()
        fixes: list[Fix] = []
        for i, g in enumerate(gps):
            t = g.time_s if g.time_s is not None else day_s + g.time_of_day_s
            fix = Fix.from_si(
                seq=i, time_s=t, lat=g.lat, lon=g.lon, fix_mode=3 if g.mode == 3 else 2,
                alt_m=g.alt_m, speed_mps=g.speed_mps, track_deg=g.track_deg, hdop=g.hdop,
                sats=g.sats,
            )  # fmt: skip
            fixes.append(fix)
        if len(fixes) < 10:
            continue
        used += 1
        for chunk in batches(fixes, 10):
            data = encode_telemetry(chunk)
            if decode_telemetry_columns(data).fixes() != tuple(chunk):
                raise RuntimeError(f"{path}: a batch did not survive the round trip")
            n += len(chunk)
            payload += len(data)
            alias += publish_size("", len(data), mqtt5=True, alias=True)
    return {
        "captures": used,
        "fixes": n,
        "bytes_per_fix": round(payload / n, 3) if n else None,
        "bytes_per_fix_mqtt5_topic_alias": round(alias / n, 3) if n else None,
    }


def run(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
    seconds: float = typer.Option(3600, help="Length of the simulated drive, seconds."),
    seed: int = typer.Option(1, help="Seed of the simulated drive."),
    tenant: str = typer.Option("acme", help="Tenant id used in the topic."),
    vehicle: str = typer.Option("van-0042", help="Vehicle id used in the topic."),
    budget: float = typer.Option(2.0, help="Seconds spent timing each codec figure."),
    nmea: list[Path] = typer.Option(
        [], "--nmea", help="Also measure real NMEA captures (files, or folders of *.log)."
    ),
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
        **({"nmea": nmea_captures(nmea)} if nmea else {}),
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
    if nmea:
        r = result["nmea"]
        typer.echo(
            f"real captures: {r['captures']} files, {r['fixes']} fixes: {r['bytes_per_fix']} "
            f"bytes/fix payload, {r['bytes_per_fix_mqtt5_topic_alias']} with MQTT 5 + alias"
        )
