"""Ingest: simulated vehicles -> real Mosquitto -> bridge -> Kafka -> store -> TimescaleDB, as
fast as they go. Prints fixes/s, the raw COPY ceiling of the same table in the same run, p99
publish-to-queryable, lost and duplicate rows.

The ceiling is one connection COPYing prepared rows into ``fixes`` in one transaction, sampled
twice before and twice after the pipeline in both formats (text, and binary as the store sends
it); the faster format's median is the ceiling. One short sample alone swung by a factor of two
with the load of whatever else ran on the machine in that second."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

REPO = Path(__file__).resolve().parents[2]


def _stack_env() -> dict[str, str]:
    values: dict[str, str] = {}
    env_file = REPO / ".stack" / "env"
    if env_file.exists():
        for line in env_file.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                values[name.strip()] = value.strip()
    values.update({k: v for k, v in os.environ.items() if k.startswith("FLOTA_")})
    return values


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / tick


def _pids_named(name: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == name:
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def _tracks(
    n_vehicles: int, per_vehicle: int, start_us: int, seed: int, seq0: int = 1
) -> list[Any]:
    """Plausible 1 Hz drives (no GPS jumps): a smooth random walk at up to 20 m/s."""
    import numpy as np

    from flota_wire.schema import Fix

    rng = np.random.default_rng(seed)
    out = []
    for v in range(n_vehicles):
        heading = np.cumsum(rng.normal(0, 0.05, per_vehicle)) + rng.uniform(0, 6.28)
        speed = np.clip(12 + np.cumsum(rng.normal(0, 0.3, per_vehicle)) % 16 - 4, 0, 20)
        dn, de = speed * np.cos(heading), speed * np.sin(heading)
        lat = 60.17 + v * 0.01 + np.cumsum(dn) / 111_133
        lon = 24.94 + np.cumsum(de) / (111_133 * np.cos(np.radians(60.17)))
        lat_e6 = np.round(lat * 1e6).astype(np.int64).tolist()
        lon_e6 = np.round(lon * 1e6).astype(np.int64).tolist()
        spd = np.round(speed * 100).astype(np.int64).tolist()
        trk = (np.round(np.degrees(heading) * 100).astype(np.int64) % 36000).tolist()
        out.append([
            Fix(seq=seq0 + i, time_us=start_us + i * 1_000_000, lat_e6=lat_e6[i], lon_e6=lon_e6[i],
                fix_mode=3, alt_dm=200 + i % 50, speed_cmps=spd[i], track_cdeg=trk[i],
                hdop_c=90, sats=11)
            for i in range(per_vehicle)
        ])  # fmt: skip
    return out


def _encode_all(tracks: list[Any], batch: int) -> list[list[tuple[int, bytes]]]:
    """Per vehicle: (last seq, payload) of each batch, encoded before the clock starts."""
    from flota_wire.telemetry import encode_telemetry

    return [
        [
            (fixes[i : i + batch][-1].seq, encode_telemetry(fixes[i : i + batch]))
            for i in range(0, len(fixes), batch)
        ]
        for fixes in tracks
    ]


def _ceiling_input(tracks: list[Any], limit: int, tenant: str, fmt: str) -> tuple[int, bytes]:
    """(rows, COPY input) of the first ``limit`` fixes under ``tenant``, prepared before the
    clock starts: ``text`` (what a plain COPY client sends) or ``binary`` (what the store
    sends, built by the store's own ``fixes_copy``)."""
    import numpy as np

    from cloud.ingest.pgcopy import fixes_copy

    per = -(-limit // len(tracks))
    chosen = [fixes[:per] for fixes in tracks]
    n = sum(len(fixes) for fixes in chosen)
    if fmt == "text":
        lines = [
            f"{tenant}\tv{v}\t"
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(f.time_us // 1_000_000))}+00\t"
            f"{f.seq}\t{f.lat_e6 / 1e6}\t{f.lon_e6 / 1e6}\t{f.alt_dm / 10}\t"
            f"{f.speed_cmps / 100}\t{f.track_cdeg / 100}\t{f.hdop_c / 100}\t{f.sats}\t"
            f"{f.fix_mode}\n"
            for v, fixes in enumerate(chosen)
            for f in fixes
        ]
        return n, "".join(lines).encode()
    flat = [f for fixes in chosen for f in fixes]
    vix = np.asarray([v for v, fixes in enumerate(chosen) for _ in fixes], dtype=np.int64)
    names = ("seq", "time_us", "lat_e6", "lon_e6", "fix_mode", "alt_dm", "speed_cmps",
             "track_cdeg", "hdop_c", "sats")  # fmt: skip
    cols = {c: np.asarray([getattr(f, c) for f in flat], dtype=np.int64) for c in names}
    keys = [(tenant, f"v{v}") for v in range(len(chosen))]
    return n, fixes_copy(keys, vix, cols)


def _copy_ceiling(url: str, tracks: list[Any], limit: int, tenant: str, fmt: str) -> float:
    """Rows/s of one raw COPY of prepared rows into ``fixes`` (the database's ceiling): one
    connection, one transaction, the input ready in memory."""
    import psycopg

    from cloud.ingest.pgcopy import FIX_COLUMNS

    n, data = _ceiling_input(tracks, limit, tenant, fmt)
    opts = " (FORMAT BINARY)" if fmt == "binary" else ""
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        with conn.cursor().copy(f"COPY fixes ({', '.join(FIX_COLUMNS)}) FROM STDIN{opts}") as cp:
            for i in range(0, len(data), 1 << 20):
                cp.write(data[i : i + (1 << 20)])
        conn.commit()
        return n / (time.perf_counter() - t0)


def _ceilings(url: str, tracks: list[Any], limit: int, when: str) -> dict[str, list[float]]:
    """One sample of each COPY format, alternating, each under a tenant of its own."""
    return {
        fmt: [_copy_ceiling(url, tracks, limit, f"ceiling-{when}-{fmt}", fmt)]
        for fmt in ("text", "binary")
    }


def _wait_group_stable(bootstrap: str, group: str, members: int, timeout: float = 120) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="flota-bench")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = admin.describe_groups([group]).get(group, {})
            if info.get("group_state") == "Stable" and len(info.get("members", [])) >= members:
                return
            time.sleep(0.5)
    finally:
        admin.close()
    raise RuntimeError(f"consumer group {group} never had {members} stable members")


class _Publisher:
    """One simulated vehicle: its own MQTT credentials, publishing its batches at QoS 1."""

    def __init__(self, host: str, port: int, dev: dict[str, str]) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from flota_wire import topics as wt

        self.dev = dev
        self.topic = wt.topic(dev["tenant"], dev["vehicle"], wt.Channel.TELEMETRY)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{secrets.token_hex(4)}"
        )
        self.client.username_pw_set(dev["username"], dev["password"])
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port, keepalive=60)
        self.client.loop_start()
        self.published: dict[int, float] = {}  # last seq of a batch -> publish time

    def publish(self, batches: list[tuple[int, bytes]], per_s: float | None = None) -> None:
        """Publish (at ``per_s`` messages a second, else as fast as the broker takes them)."""
        infos = []
        start = time.monotonic()
        for n, (last_seq, payload) in enumerate(batches):
            if per_s is not None:
                delay = start + n / per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.published[last_seq] = time.monotonic()
            infos.append(self.client.publish(self.topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(120)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON line."),
    fixes: int = typer.Option(
        900_000, help="Fixes to send: 2/3 as fast as they go, 1/3 paced for the p99."
    ),
    batch: int = typer.Option(500, help="Fixes per MQTT message (a vehicle flushing its queue)."),
    bridges: int = typer.Option(1, help="Bridge processes sharing the $share subscription."),
    stores: int = typer.Option(2, help="Store processes in one consumer group."),
    ceiling_rows: int = typer.Option(
        200_000, help="Rows of each raw COPY ceiling sample (4 before, 4 after the pipeline)."
    ),
    profile_dir: Path | None = typer.Option(None, help="cProfile each bridge/store into DIR."),
    timeout_s: float = typer.Option(300.0, help="Give up waiting for the last fix after this."),
    paced_fraction: float = typer.Option(
        0.8, help="Latency phase: publish at this fraction of the measured throughput."
    ),
) -> None:
    import logging

    import psycopg

    from cloud.db.connection import connect
    from cloud.db.migrate import migrate
    from cloud.db.scratch import scratch_database

    logging.getLogger("kafka").setLevel(logging.ERROR)
    env = _stack_env()
    for need in ("FLOTA_DATABASE_URL", "FLOTA_KAFKA_BOOTSTRAP", "FLOTA_MQTT_DEVICES_FILE"):
        if not env.get(need):
            typer.echo(f"{need} unset: start the stack with deploy/local/start.sh", err=True)
            raise typer.Exit(2)
    devices = json.loads(Path(env["FLOTA_MQTT_DEVICES_FILE"]).read_text(encoding="utf-8"))
    n_veh = len(devices)
    per_vehicle = -(-fixes // n_veh) + batch  # + one warm-up batch each
    start_us = int(time.time() * 1e6) - (per_vehicle + 600) * 1_000_000
    # Seqs of this run's own (the shared broker may carry other traffic of the same devices).
    seq0 = 10**12 + secrets.randbelow(10**12)
    tracks = _tracks(n_veh, per_vehicle, start_us, seed=1, seq0=seq0)
    payloads = _encode_all(tracks, batch)
    tag = secrets.token_hex(4)
    load_before = os.getloadavg()
    with scratch_database(env["FLOTA_DATABASE_URL"], prefix="flota_bench") as url:
        with connect(url, autocommit=True) as conn:
            migrate(conn)
            for d in devices:
                conn.execute(
                    "INSERT INTO tenants (tenant_id) VALUES (%s) ON CONFLICT DO NOTHING",
                    (d["tenant"],),
                )
                conn.execute(
                    "INSERT INTO devices (tenant_id, vehicle_id) VALUES (%s, %s)",
                    (d["tenant"], d["vehicle"]),
                )
        # The ceiling is sampled before AND after the pipeline (the machine's load drifts
        # over a run), each time in both formats; its median is what the rate is compared to.
        samples: dict[str, list[float]] = {"text": [], "binary": []}
        for when in ("before0", "before1"):
            for fmt, got in _ceilings(url, tracks, ceiling_rows, when).items():
                samples[fmt] += got
        penv = dict(os.environ)
        penv.update(env)
        penv.update(
            FLOTA_DATABASE_URL=url,
            FLOTA_REGISTRY_DATABASE_URL=url,
            FLOTA_KAFKA_TOPIC_PREFIX=f"bench{tag}",
            FLOTA_SHARE_GROUP=f"bench{tag}",
            FLOTA_CONSUMER_GROUP=f"bench-store-{tag}",
            FLOTA_BATCH_MAX_RECORDS="200",
            FLOTA_LOG_LEVEL=os.environ.get("FLOTA_BENCH_LOG_LEVEL", "WARNING"),
        )
        procs: list[tuple[str, subprocess.Popen[bytes]]] = []

        def spawn(name: str, args: list[str]) -> None:
            cmd = [sys.executable]
            if profile_dir is not None:
                profile_dir.mkdir(parents=True, exist_ok=True)
                cmd += ["-m", "cProfile", "-o", str(profile_dir / f"{name}.prof")]
            cmd += ["-m", "flota", *args]
            procs.append((name, subprocess.Popen(cmd, env=penv, cwd=REPO)))

        for i in range(stores):
            penv["FLOTA_GROUP_INSTANCE_ID"] = f"bench-{tag}-store{i}"
            spawn(f"store{i}", ["ingest", "store"])
        penv.pop("FLOTA_GROUP_INSTANCE_ID")
        for i in range(bridges):
            spawn(f"bridge{i}", ["bridge", "run"])
        pubs = [_Publisher(env["FLOTA_MQTT_HOST"], int(env["FLOTA_MQTT_PORT"]), d) for d in devices]
        keys = [(d["tenant"], d["vehicle"]) for d in devices]
        wconn = psycopg.connect(url, autocommit=True)

        def marks() -> dict[tuple[str, str], int]:
            rows = wconn.execute(
                "SELECT tenant_id, vehicle_id, stored_seq FROM ingest_watermarks"
            ).fetchall()
            return {(t, v): s for t, v, s in rows}

        try:
            # Warm-up: one batch per vehicle through the whole path (group joins, connections).
            # Resent every few seconds, as a device does until its stored-ack: a message
            # published before the bridges subscribed reaches nobody.
            deadline = time.monotonic() + 120
            resend_at = 0.0
            while time.monotonic() < deadline:
                m = marks()
                if all(m.get(k, 0) >= payloads[i][0][0] for i, k in enumerate(keys)):
                    break
                if time.monotonic() >= resend_at:
                    for i, (p, batches) in enumerate(zip(pubs, payloads, strict=True)):
                        if m.get(keys[i], 0) < batches[0][0]:
                            p.publish(batches[:1])
                    resend_at = time.monotonic() + 3.0
                time.sleep(0.1)
            else:
                raise RuntimeError("warm-up batches never stored: is the stack healthy?")
            # Every store must be in the group before the clock starts: a late joiner's
            # rebalance in the timed phase would cost replays.
            _wait_group_stable(env["FLOTA_KAFKA_BOOTSTRAP"], f"bench-store-{tag}", stores)
            cpu0 = {name: _cpu_s(p.pid) for name, p in procs}
            infra = {
                "kafka": [int((REPO / ".stack/kafka/kafka.pid").read_text())],
                "mosquitto": [int((REPO / ".stack/mosquitto/mosquitto.pid").read_text())],
                "postgres": _pids_named("postgres"),
            }
            infra0 = {k: sum(_cpu_s(p) for p in v) for k, v in infra.items()}
            # Resent warm-up batches are duplicates by design; count only later ones.
            warm_end_s = (start_us + batch * 1_000_000) / 1e6
            seen = {k: payloads[i][0][0] for i, k in enumerate(keys)}
            cut = 1 + (len(payloads[0]) - 1) * 2 // 3

            def phase(lo: int, hi: int, rate: float | None) -> tuple[float, list[float], bool]:
                """Publish batches [lo, hi) of every vehicle (as fast as they go, or at
                ``rate`` fixes/s in all); return (seconds until all stored, latencies, done)."""
                lat: list[float] = []
                final = {k: payloads[i][hi - 1][0] for i, k in enumerate(keys)}
                per_vehicle_rate = None if rate is None else rate / n_veh / batch
                threads = [
                    threading.Thread(
                        target=p.publish, args=(b[lo:hi], per_vehicle_rate), daemon=True
                    )
                    for p, b in zip(pubs, payloads, strict=True)
                ]
                start = time.monotonic()
                for t in threads:
                    t.start()
                deadline = start + timeout_s
                while time.monotonic() < deadline:
                    now = time.monotonic()
                    m = marks()
                    for i, k in enumerate(keys):
                        stored = m.get(k, 0)
                        if stored > seen[k]:
                            for last_seq, sent_at in pubs[i].published.items():
                                if seen[k] < last_seq <= stored:
                                    lat.append(now - sent_at)
                            seen[k] = stored
                    if all(seen[k] >= final[k] for k in keys):
                        return now - start, lat, True
                    time.sleep(0.02)
                return time.monotonic() - start, lat, False

            elapsed, saturated, done_a = phase(1, cut, None)
            timed = n_veh * (cut - 1) * batch
            rate = timed / elapsed
            paced_rate = rate * paced_fraction
            _, latencies, done_b = phase(cut, len(payloads[0]), paced_rate)
            done_at = done_a and done_b
            cpu = {name: round(_cpu_s(p.pid) - cpu0[name], 1) for name, p in procs}
            cpu.update(
                {k: round(sum(_cpu_s(p) for p in v) - infra0[k], 1) for k, v in infra.items()}
            )
            sent = sum(len(t) for t in tracks)
            counts = wconn.execute(
                "SELECT count(*), count(DISTINCT (tenant_id, vehicle_id, seq)) FROM fixes "
                "WHERE tenant_id NOT LIKE 'ceiling-%%' AND seq >= %s",
                (seq0,),
            ).fetchone()
            dup_rows = wconn.execute(
                "SELECT tenant_id, vehicle_id, seq, array_agg(time::text) FROM fixes "
                "WHERE tenant_id NOT LIKE 'ceiling-%%' AND seq >= %s GROUP BY 1, 2, 3 "
                "HAVING count(*) > 1 LIMIT 5",
                (seq0,),
            ).fetchall()
            q_examples = wconn.execute(
                "SELECT vehicle_id, seq, fix_time::text, received_at::text FROM quarantine "
                "WHERE reason <> 'duplicate' AND seq >= %s ORDER BY vehicle_id, seq LIMIT 8",
                (seq0,),
            ).fetchall()
            reasons: dict[str, int] = dict(
                wconn.execute(
                    "SELECT reason, count(*) FROM quarantine WHERE (seq >= %s OR seq IS NULL) "
                    "AND (reason <> 'duplicate' OR fix_time > %s) GROUP BY reason",
                    (seq0, datetime.fromtimestamp(warm_end_s, UTC)),
                ).fetchall()
            )
        finally:
            for p in pubs:
                p.close()
            for _, proc in procs:
                proc.terminate()
            for _, proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            wconn.close()
        for when in ("after0", "after1"):
            for fmt, got in _ceilings(url, tracks, ceiling_rows, when).items():
                samples[fmt] += got
    assert counts is not None
    medians = {fmt: statistics.median(v) for fmt, v in samples.items()}
    ceiling = max(medians.values())  # the faster raw COPY is the ceiling
    latencies.sort()
    saturated.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None
    result = {
        "fixes_per_s": round(rate),
        "copy_ceiling_fixes_per_s": round(ceiling),
        "ratio_to_ceiling": round(rate / ceiling, 3),
        "copy_ceiling_samples": {k: [round(x) for x in v] for k, v in samples.items()},
        "ratio_to_text_copy": round(rate / medians["text"], 3),
        "p99_publish_to_query_ms": None if p99 is None else round(p99 * 1000),
        "p50_publish_to_query_ms": round(latencies[len(latencies) // 2] * 1000)
        if latencies
        else None,
        "paced_fixes_per_s": round(paced_rate),
        "p99_saturated_ms": round(saturated[int(0.99 * (len(saturated) - 1))] * 1000)
        if saturated
        else None,
        # Quarantined fixes are kept (in quarantine), so they are not lost; they are listed.
        "lost": sent - int(counts[0]) - sum(v for k, v in reasons.items() if k != "duplicate"),
        "duplicates": int(counts[0]) - int(counts[1]),
        "quarantined": reasons,
        "fixes": timed,
        "seconds": round(elapsed, 2),
        "vehicles": n_veh,
        "fixes_per_message": batch,
        "bridges": bridges,
        "stores": stores,
        "cpu_s": cpu,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "completed": done_at,
        "duplicate_examples": [list(map(str, r)) for r in dup_rows],
        "quarantine_examples": [list(map(str, r)) for r in q_examples],
    }
    if json_out:
        typer.echo(json.dumps(result))
    else:
        for name, value in result.items():
            typer.echo(f"{name:28} {value}")
