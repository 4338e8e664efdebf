"""Events and sensor samples as rows: names unique per channel, the event detail the geo
processor writes too, refused times quarantined (kept) instead of stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloud.ingest import validate
from cloud.ingest.streams import StreamRows, sensor_name, time_reason, vehicle_event_detail
from flota_wire.schema import Event, SensorBatch, SensorKind, SensorSample, Severity, VehicleRef

NOW = 1_795_780_800_000_000
RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)
LIM = validate.Limits()


def ts(us: int) -> Any:
    return ("ts", us)


def test_sensor_names_keep_accel_and_gyro_apart() -> None:
    assert sensor_name(SensorKind.IMU_ACCEL, "imu0", "x") == "imu0.accel.x"
    assert sensor_name(SensorKind.IMU_GYRO, "imu0", "x") == "imu0.gyro.x"
    assert sensor_name(SensorKind.OBD, "obd", "0C") == "obd.obd.0C"
    assert sensor_name(SensorKind.DIGITAL, "io", "ignition") == "io.din.ignition"
    names = {sensor_name(k, "s", "n") for k in SensorKind}
    assert len(names) == len(SensorKind)


def test_event_rows_and_their_detail() -> None:
    e = Event(7, NOW, "harsh_brake", Severity.CRITICAL, 60_170_000, 24_940_000, (("g", 0.9),))
    assert vehicle_event_detail(e) == {"g": 0.9, "severity": 2, "lat": 60.17, "lon": 24.94}
    assert vehicle_event_detail(Event(8, NOW, "tamper", Severity.INFO)) == {"severity": 0}
    rows = StreamRows()
    rows.add_event("acme", "van", e, ts, RECEIVED, None)
    rows.add_event("acme", "van", Event(9, NOW + 10**12, "tamper", Severity.INFO), ts, RECEIVED,
                   validate.FUTURE)  # fmt: skip
    assert rows.events == [
        ("acme", "van", ("ts", NOW), "harsh_brake", "7", "vehicle", 7,
         '{"g":0.9,"severity":2,"lat":60.17,"lon":24.94}')
    ]  # fmt: skip
    assert [(q[1], q[5]) for q in rows.quarantine] == [("future", 9)]


def test_samples_with_refused_times_are_quarantined_with_their_value() -> None:
    batch = SensorBatch(
        VehicleRef("acme", "van"),
        (
            SensorSample(1, NOW, SensorKind.ANALOG, "io", "supply", 12.5, "V"),
            SensorSample(2, NOW - 40 * 86_400_000_000, SensorKind.ANALOG, "io", "supply", 12, "V"),
            SensorSample(3, 2**62, SensorKind.OBD, "obd", "0C", 2100, "1/s"),
        ),
    )
    rows = StreamRows()

    def reason_of(t: int) -> str | None:
        return time_reason(t, NOW, LIM)

    rows.add_sensors("acme", "van", batch, ts, RECEIVED, reason_of)
    assert rows.sensors == [("acme", "van", ("ts", NOW), "io.ain.supply", 12.5, 1)]
    assert [(q[1], q[5], q[8]) for q in rows.quarantine] == [
        ("too_old", 2, "io.ain.supply=12"),
        ("future", 3, "obd.obd.0C=2100"),
    ]


def test_time_limits_are_the_fixes_limits() -> None:
    assert time_reason(NOW, NOW, LIM) is None
    assert time_reason(NOW + int(LIM.future_tolerance_s * 1e6) + 1, NOW, LIM) == "future"
    assert time_reason(NOW - int(LIM.max_age_s * 1e6) - 1, NOW, LIM) == "too_old"
