"""The store's other uplink streams: the vehicle's events and sensor samples, as table rows.

They are written in the same transaction as the batch's fixes (staging table, then INSERT ...
ON CONFLICT DO NOTHING: a resent event or sample is the same row) and acknowledged end to end
the same way, so the device keeps them until they are committed. Vehicle events are also
republished by the geo processor as domain events; both write the same row (same key and
detail), whichever comes first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud.ingest import validate
from flota_wire.schema import Event, SensorBatch, SensorKind

# How a sample's kind reads in ``sensor_samples.sensor`` ("{source}.{label}.{name}").
KIND_LABEL = {
    SensorKind.IMU_ACCEL: "accel",
    SensorKind.IMU_GYRO: "gyro",
    SensorKind.OBD: "obd",
    SensorKind.CAN: "can",
    SensorKind.DIGITAL: "din",
    SensorKind.ANALOG: "ain",
}

EVENT_COLUMNS = ("tenant_id", "vehicle_id", "time", "kind", "event_key", "source", "seq", "detail")
SENSOR_COLUMNS = ("tenant_id", "vehicle_id", "time", "sensor", "value", "seq")

SETUP = """
CREATE TEMP TABLE IF NOT EXISTS store_events_stage (LIKE events INCLUDING DEFAULTS)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS store_sensors_stage (LIKE sensor_samples INCLUDING DEFAULTS)
    ON COMMIT DELETE ROWS;
"""


def vehicle_event_detail(event: Event) -> dict[str, Any]:
    """The ``detail`` of a vehicle event's row: its details, severity and position."""
    detail: dict[str, Any] = dict(event.details)
    detail["severity"] = int(event.severity)
    if event.lat_e6 is not None and event.lon_e6 is not None:
        detail["lat"], detail["lon"] = event.lat_e6 / 1e6, event.lon_e6 / 1e6
    return detail


def sensor_name(kind: SensorKind, source: str, name: str) -> str:
    """``imu0.accel.x``, ``obd.obd.0C``, ``io.din.ignition``: unique per channel (an IMU's
    x axis is both an acceleration and a rate). Values are in the SI unit the wire names."""
    return f"{source}.{KIND_LABEL[kind]}.{name}"


@dataclass
class StreamRows:
    """What one poll brings of events and sensor samples, ready for the transaction."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    sensors: list[tuple[Any, ...]] = field(default_factory=list)
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)

    def add_event(
        self,
        tenant: str,
        vehicle: str,
        event: Event,
        ts: Any,
        received: datetime,
        reason: str | None,
    ) -> None:
        """One event row, or a quarantine row when its time is refused (``reason``)."""
        if reason is not None:
            self.quarantine.append((received, reason, tenant, vehicle, None, event.seq,
                                    ts(event.time_us), None, f"event {event.kind}"))  # fmt: skip
            return
        detail = json.dumps(vehicle_event_detail(event), separators=(",", ":"))
        self.events.append((tenant, vehicle, ts(event.time_us), event.kind, str(event.seq),
                            "vehicle", event.seq, detail))  # fmt: skip

    def add_sensors(
        self,
        tenant: str,
        vehicle: str,
        batch: SensorBatch,
        ts: Any,
        received: datetime,
        reason_of: Any,
    ) -> None:
        """The batch's samples as rows; a sample whose time ``reason_of`` refuses is
        quarantined (kept, with its sensor and value in the detail)."""
        for s in batch.samples:
            sensor = sensor_name(s.kind, s.source, s.name)
            reason = reason_of(s.time_us)
            if reason is not None:
                self.quarantine.append((received, reason, tenant, vehicle, None, s.seq,
                                        ts(s.time_us), None, f"{sensor}={s.value!r}"))  # fmt: skip
            else:
                self.sensors.append((tenant, vehicle, ts(s.time_us), sensor, float(s.value),
                                     s.seq))  # fmt: skip


def time_reason(time_us: int, now_us: int, limits: validate.Limits) -> str | None:
    """``future`` or ``too_old`` by the fixes' limits, else None."""
    if time_us > now_us + limits.future_tolerance_s * 1e6:
        return validate.FUTURE
    if time_us < now_us - limits.max_age_s * 1e6:
        return validate.TOO_OLD
    return None


def write_streams(cur: Any, rows: StreamRows) -> tuple[int, int, int, int]:
    """Stage and insert the poll's events and samples (inside the caller's transaction);
    return (events stored, event duplicates, samples stored, sample duplicates)."""
    out = []
    for stage, table, cols, values in (
        ("store_events_stage", "events", EVENT_COLUMNS, rows.events),
        ("store_sensors_stage", "sensor_samples", SENSOR_COLUMNS, rows.sensors),
    ):
        if not values:
            out += [0, 0]
            continue
        names = ", ".join(cols)
        with cur.copy(f"COPY {stage} ({names}) FROM STDIN") as cp:
            for row in values:
                cp.write_row(row)
        stored = cur.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
        ).rowcount
        out += [stored, len(values) - stored]
    return out[0], out[1], out[2], out[3]
