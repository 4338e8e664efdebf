"""Bad input through the real Mosquitto, bridge, Kafka, store and TimescaleDB: a corpus with a
known number of each bad kind is quarantined with exactly those counts per reason; late and
shuffled fixes are stored and never move a vehicle's latest position backwards."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from pipeline_support import AckDevice, Pipeline, ingest_database, query, wait_for
from stack_support import MqttBroker

from flota_wire.schema import Fix
from flota_wire.telemetry import encode_telemetry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def db(database_url: str, mqtt_broker: MqttBroker) -> Iterator[str]:
    # Every stack device is registered except the last one.
    register = [(d.tenant, d.vehicle) for d in mqtt_broker.devices[:-1]]
    with ingest_database(database_url, "flota_ingest_q", register) as url:
        yield url


@pytest.fixture(scope="module")
def pipeline(db: str, mqtt_broker: MqttBroker, kafka_bootstrap: str) -> Iterator[Pipeline]:
    with Pipeline(mqtt_broker, kafka_bootstrap, db, registry=True) as p:
        yield p


def track(n: int, t0_us: int, first_seq: int = 1) -> list[Fix]:
    """A vehicle driving north at 10 m/s, one fix a second."""
    return [
        Fix(seq=first_seq + i, time_us=t0_us + i * 1_000_000, lat_e6=60_000_000 + i * 90,
            lon_e6=24_900_000, speed_cmps=1000, track_cdeg=0, hdop_c=90, sats=10)
        for i in range(n)
    ]  # fmt: skip


def test_corpus_quarantined_with_exact_counts(
    pipeline: Pipeline, db: str, mqtt_broker: MqttBroker
) -> None:
    bridge, store = pipeline.bridge, pipeline.store
    dev = mqtt_broker.devices[0]
    now_us = int(time.time() * 1e6)
    good = track(120, now_us - 3_600_000_000)
    by_seq = {f.seq: f for f in good}
    expected = {
        "null_island": 3, "out_of_range": 4, "future": 3, "too_old": 2, "impossible_speed": 5,
        "duplicate": 11, "unregistered": 2, "decode": 2,
    }  # fmt: skip
    bad: dict[int, Fix] = {}
    for s in (70, 71, 72):
        bad[s] = replace(by_seq[s], lat_e6=0, lon_e6=0)
    bad[75] = replace(by_seq[75], lat_e6=95_000_000)
    bad[76] = replace(by_seq[76], lat_e6=-95_000_000)
    bad[77] = replace(by_seq[77], lon_e6=200_000_000)
    bad[78] = replace(by_seq[78], speed_cmps=20_000)  # 200 m/s reported
    for s in (80, 81):
        bad[s] = replace(by_seq[s], time_us=now_us + 3_600_000_000 + s)
    bad[82] = replace(by_seq[82], time_us=2**62)  # beyond any timestamp type: kept all the same
    for s in (83, 84):
        bad[s] = replace(by_seq[s], time_us=now_us - 40 * 86_400_000_000 + s)
    for s in (90, 95, 100, 105):  # isolated GPS jumps of 55 km
        bad[s] = replace(by_seq[s], lat_e6=by_seq[s].lat_e6 + 500_000)
    bad[110] = replace(by_seq[110], time_us=by_seq[109].time_us)  # same instant twice
    late = [replace(by_seq[19], lat_e6=by_seq[19].lat_e6 + 500_000)] + [
        by_seq[s] for s in range(20, 25)
    ]  # held back: a late jump (seq 19) and five good late fixes
    held = {f.seq for f in late}
    batch_a = [f for f in good[:60] if f.seq not in held]
    batch_b = [bad.get(f.seq, f) for f in good[60:]]

    pub = AckDevice.on(mqtt_broker, dev, pipeline.cloud_id)
    stranger = AckDevice.on(
        mqtt_broker, mqtt_broker.devices[-1], pipeline.cloud_id
    )  # not in the registry
    try:
        pub.publish(encode_telemetry(batch_a))
        pub.publish(encode_telemetry(batch_b))
        pub.publish(encode_telemetry(late))
        pub.publish(encode_telemetry(good[:10]))  # a resend: 10 duplicates
        pub.publish(b"\x11\xff\xff\xffnot a batch")  # a good header: the store refuses it
        pub.publish(b"\x21\x00\x00")  # version 2: the bridge refuses it by its header
        stranger.publish(encode_telemetry(track(5, now_us - 60_000_000)))
        stranger.publish(encode_telemetry(track(5, now_us - 50_000_000, first_seq=6)))

        def counts() -> dict[str, int]:
            return dict(query(db, "SELECT reason, count(*) FROM quarantine GROUP BY reason"))

        wait_for(lambda: sum(counts().values()) >= sum(expected.values()))
        time.sleep(1.0)  # anything extra would show now
        assert counts() == expected
        stored_seqs = {r[0] for r in query(
            db, "SELECT seq FROM fixes WHERE tenant_id = %s AND vehicle_id = %s", dev.tenant,
            dev.vehicle,
        )}  # fmt: skip
        assert stored_seqs == {f.seq for f in good} - set(bad) - {19}
        latest = query(
            db,
            "SELECT seq FROM vehicle_latest WHERE tenant_id = %s AND vehicle_id = %s",
            dev.tenant,
            dev.vehicle,
        )
        assert latest == [(120,)]  # neither the future fixes nor the late ones moved it
        # The bridge refused whole messages (by registry and header, it decodes nothing); the
        # store wrote every quarantine row, counted.
        assert bridge.stats.quarantined == {"unregistered": 2, "decode": 1}
        wait_for(lambda: dict(store.stats.quarantined) == expected, timeout=10)
        assert not query(
            db, "SELECT 1 FROM fixes WHERE vehicle_id = %s", mqtt_broker.devices[-1].vehicle
        )
    finally:
        pub.close()
        stranger.close()


def test_shuffled_late_fixes_are_stored_and_latest_never_moves_back(
    pipeline: Pipeline, db: str, mqtt_broker: MqttBroker
) -> None:
    dev = mqtt_broker.devices[1]
    now_us = int(time.time() * 1e6)
    fixes = track(400, now_us - 7_200_000_000)
    rng = random.Random(4)
    order = fixes[:]
    rng.shuffle(order)
    batches = [sorted(order[i : i + 10], key=lambda f: f.seq) for i in range(0, 400, 10)]
    pub = AckDevice.on(mqtt_broker, dev, pipeline.cloud_id)
    newest_sent = 0
    seen_latest: list[int] = []
    try:
        for b in batches:
            pub.publish(encode_telemetry(b))
            newest_sent = max(newest_sent, *(f.time_us for f in b))
            rows = query(
                db,
                "SELECT (extract(epoch FROM time) * 1000000)::bigint FROM vehicle_latest "
                "WHERE tenant_id = %s AND vehicle_id = %s",
                dev.tenant,
                dev.vehicle,
            )
            if rows:  # whatever is committed so far: never ahead of what was sent
                assert rows[0][0] <= newest_sent
                seen_latest.append(rows[0][0])

        def stored() -> int:
            return int(query(
                db, "SELECT count(*) FROM fixes WHERE tenant_id = %s AND vehicle_id = %s",
                dev.tenant, dev.vehicle,
            )[0][0])  # fmt: skip

        wait_for(lambda: stored() == 400)
        assert not query(
            db, "SELECT reason FROM quarantine WHERE vehicle_id = %s AND tenant_id = %s",
            dev.vehicle, dev.tenant,
        )  # fmt: skip
        latest = query(
            db,
            "SELECT seq FROM vehicle_latest WHERE tenant_id = %s AND vehicle_id = %s",
            dev.tenant,
            dev.vehicle,
        )
        assert latest == [(400,)]
        assert seen_latest == sorted(seen_latest)  # never moved backwards meanwhile
        assert len(seen_latest) > 5
    finally:
        pub.close()
