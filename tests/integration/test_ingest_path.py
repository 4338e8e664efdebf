"""A fix's whole journey against the real Mosquitto, Kafka and TimescaleDB: a registered device
publishes encoded batches, the bridge forwards them to Kafka, the store writes them, and the
device receives the end-to-end acknowledgement of exactly the seqs it sent, from its own cloud.
Events and sensor samples travel the same way and are acknowledged on their own streams."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pipeline_support import AckDevice, Pipeline, ingest_database, query, wait_for
from stack_support import MqttBroker, MqttDevice

from flota_wire import topics as wt
from flota_wire.acks import encode_stored_ack
from flota_wire.jsoncodec import encode_event, encode_sensors
from flota_wire.schema import Event, SensorBatch, SensorKind, SensorSample, Severity, Stream
from flota_wire.schema import VehicleRef as Ref
from flota_wire.telemetry import encode_telemetry
from flota_wire.tracesim import simulate_city


@pytest.fixture(scope="module")
def ingest_db(database_url: str) -> Iterator[str]:
    with ingest_database(database_url, "flota_ingest") as url:
        yield url


@pytest.fixture(scope="module")
def pipeline(ingest_db: str, mqtt_broker: MqttBroker, kafka_bootstrap: str) -> Iterator[Pipeline]:
    with Pipeline(mqtt_broker, kafka_bootstrap, ingest_db) as p:
        yield p


# The stack's broker may carry other tests' traffic of the same devices: this module's rows
# use a seq range of their own, and only those rows are looked at.
SEQ0 = 10**12 + random.randrange(10**12)


def _rows(url: str, dev: MqttDevice) -> list[tuple[Any, ...]]:
    return query(
        url,
        "SELECT seq, lat, lon FROM fixes WHERE tenant_id = %s AND vehicle_id = %s "
        "AND seq >= %s ORDER BY seq",
        dev.tenant,
        dev.vehicle,
        SEQ0,
    )


def test_fixes_travel_to_rows_and_back_as_acks(
    pipeline: Pipeline, ingest_db: str, mqtt_broker: MqttBroker
) -> None:
    dev = mqtt_broker.devices[0]
    with AckDevice.on(mqtt_broker, dev, pipeline.cloud_id) as device:
        now_us = int(time.time() * 1e6) - 120_000_000
        fixes = simulate_city(60, seed=7, start_us=now_us, first_seq=SEQ0, dropout=0.0)
        for i in range(0, len(fixes), 10):
            device.publish(encode_telemetry(fixes[i : i + 10]))
        sent = {f.seq for f in fixes}
        missing = device.wait_acked(sent, timeout=60)
        assert not missing, f"never acknowledged end to end: {sorted(missing)[:10]}"
        rows = _rows(ingest_db, dev)
        assert [r[0] for r in rows] == sorted(sent)
        by_seq = {f.seq: f for f in fixes}
        for seq, lat, lon in rows:  # exact to 1e-6 degree
            assert round(lat * 1e6) == by_seq[seq].lat_e6
            assert round(lon * 1e6) == by_seq[seq].lon_e6

        # A resend (what a device does after a lost acknowledgement) stores nothing twice and is
        # counted as duplicates, and acknowledged again.
        device.forget()
        device.publish(encode_telemetry(fixes[:10]))
        assert not device.wait_acked({f.seq for f in fixes[:10]}, timeout=30)
        assert len(_rows(ingest_db, dev)) == len(fixes)
        wait_for(lambda: pipeline.store.stats.quarantined["duplicate"] == 10, timeout=10)
        assert pipeline.store.stats.direct_refused >= 1  # the fast path met the stored rows

        latest = query(
            ingest_db,
            "SELECT seq FROM vehicle_latest WHERE tenant_id = %s AND vehicle_id = %s",
            dev.tenant,
            dev.vehicle,
        )
        assert latest == [(fixes[-1].seq,)]  # the resend of old fixes did not move it back
        assert pipeline.bridge.stats.quarantined == {}


def test_events_and_sensor_samples_are_stored_then_acknowledged(
    pipeline: Pipeline, ingest_db: str, mqtt_broker: MqttBroker
) -> None:
    dev = mqtt_broker.devices[2]
    ref = Ref(dev.tenant, dev.vehicle)
    t = int(time.time() * 1e6) - 60_000_000
    events = [
        Event(SEQ0 + i, t + i * 1_000_000, "harsh_brake", Severity.WARNING,
              60_170_000, 24_940_000, (("g", 0.61 + i / 100),))
        for i in range(3)
    ]  # fmt: skip
    samples = [
        SensorSample(SEQ0 + 10 + i, t, kind, "imu0", "x", 0.5 + i, unit)
        for i, (kind, unit) in enumerate(
            [(SensorKind.IMU_ACCEL, "m/s2"), (SensorKind.IMU_GYRO, "rad/s")]
        )
    ] + [SensorSample(SEQ0 + 14, t, SensorKind.DIGITAL, "io", "ignition", 1, "")]
    with AckDevice.on(mqtt_broker, dev, pipeline.cloud_id) as device:
        for e in events:
            device.publish(encode_event(e), wt.Channel.EVENTS)
        device.publish(encode_sensors(SensorBatch(ref, tuple(samples))), wt.Channel.SENSORS)
        event_seqs, sample_seqs = {e.seq for e in events}, {s.seq for s in samples}
        assert not device.wait_acked(event_seqs, 60, Stream.EVENTS)
        assert not device.wait_acked(sample_seqs, 30, Stream.SENSORS)
        # acknowledged only once committed: the rows are there
        stored_events = query(
            ingest_db,
            "SELECT seq, kind, event_key, source, detail FROM events "
            "WHERE tenant_id = %s AND vehicle_id = %s AND seq >= %s ORDER BY seq",
            dev.tenant, dev.vehicle, SEQ0,
        )  # fmt: skip
        assert [r[0] for r in stored_events] == sorted(event_seqs)
        assert stored_events[0][1:4] == ("harsh_brake", str(SEQ0), "vehicle")
        assert stored_events[0][4] == {"g": 0.61, "severity": 1, "lat": 60.17, "lon": 24.94}
        stored_samples = query(
            ingest_db,
            "SELECT seq, sensor, value FROM sensor_samples "
            "WHERE tenant_id = %s AND vehicle_id = %s AND seq >= %s ORDER BY seq",
            dev.tenant, dev.vehicle, SEQ0,
        )  # fmt: skip
        assert stored_samples == [
            (SEQ0 + 10, "imu0.accel.x", 0.5),
            (SEQ0 + 11, "imu0.gyro.x", 1.5),
            (SEQ0 + 14, "io.din.ignition", 1.0),
        ]
        # the seqs of one sensor batch come back as exact ranges (the gap stays unacked)
        assert device.missing({SEQ0 + 12, SEQ0 + 13}, Stream.SENSORS) == {SEQ0 + 12, SEQ0 + 13}
        # sent again (a lost ack): no second row, acknowledged again
        device.forget()
        device.publish(encode_event(events[0]), wt.Channel.EVENTS)
        assert not device.wait_acked({events[0].seq}, 30, Stream.EVENTS)
        wait_for(lambda: pipeline.store.stats.stream_duplicates >= 1)
        assert len(query(ingest_db, "SELECT 1 FROM events WHERE seq >= %s", SEQ0)) == 3
        assert pipeline.store.stats.events_stored >= 3


def test_acks_of_another_cloud_are_ignored(
    pipeline: Pipeline, mqtt_broker: MqttBroker, kafka_bootstrap: str
) -> None:
    """Clouds that share a broker: an ack naming another cloud frees nothing on the device."""
    dev = mqtt_broker.devices[3]
    with AckDevice.on(mqtt_broker, dev, pipeline.cloud_id) as device:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        key = f"{dev.tenant}/{dev.vehicle}".encode()
        for cloud in ("someone-else", None, pipeline.cloud_id):
            ack = encode_stored_ack([(SEQ0, SEQ0 + 4)], time_us=1, cloud=cloud)
            producer.send(f"{pipeline.tag}.stored.v1", key=key, value=ack)  # via the bridge
        producer.flush(10)
        producer.close()
        assert not device.wait_acked(set(range(SEQ0, SEQ0 + 5)), 30)
        assert device.foreign == 2


def test_corrupt_payload_is_quarantined_with_reason(
    pipeline: Pipeline, ingest_db: str, mqtt_broker: MqttBroker
) -> None:
    dev = mqtt_broker.devices[1]
    with AckDevice.on(mqtt_broker, dev, pipeline.cloud_id) as device:
        device.publish(b"\x01\xff\x00garbage")  # version 0: refused by the bridge
        device.publish(b"\x11\xff\x00garbage")  # a v1 telemetry header: refused by the store

        def decode_rows() -> int:
            rows = query(
                ingest_db,
                "SELECT count(*) FROM quarantine WHERE reason = 'decode' AND vehicle_id = %s",
                dev.vehicle,
            )
            return int(rows[0][0])

        wait_for(lambda: decode_rows() == 2, timeout=30)
        assert pipeline.bridge.stats.quarantined["decode"] == 1
        # its own and the bridge's (counted once the batch is finished, after the commit)
        wait_for(lambda: pipeline.store.stats.quarantined["decode"] == 2, timeout=10)
        assert _rows(ingest_db, dev) == []
