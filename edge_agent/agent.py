"""The agent: GPS epochs -> reporting policy -> outbox -> MQTT, plus the vehicle bus, local
inference, and commands from the cloud.

One loop owns the business logic (``Agent.step``); inputs arrive from source threads on one
queue, commands from paho's thread on another. Fixes the policy keeps are committed to the
outbox once per loop turn (one transaction for whatever arrived), which is when they count as
accepted.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Any

from edge_agent import memory
from edge_agent.commands import (
    CommandProcessor,
    ConfigHandler,
    ModelUpdateHandler,
    RoutePlanHandler,
    write_atomic,
)
from edge_agent.gps.fix import GpsFix
from edge_agent.outbox import Outbox
from edge_agent.pipeline import FixPipeline, to_wire_fix
from edge_agent.reporting import ReportingConfig
from edge_agent.settings import AgentSettings
from edge_agent.sources import GpsThread, Inbox, McuThread, ObdThread, SourceThread
from edge_agent.stops import STOP_ARRIVED, StopConfig, StopEvent, StopTracker
from edge_agent.uplink import Uplink, UplinkConfig
from flota_wire import (
    AckStatus,
    Command,
    CommandAck,
    Event,
    SensorKind,
    SensorSample,
    Severity,
    encode,
)

log = logging.getLogger(__name__)

GNSS_LOST_AFTER_S = 10.0
EVENT_COOLDOWN_S = 3.0
# model class -> (event kind, severity)
DETECTION_EVENTS: dict[str, tuple[str, Severity]] = {
    "harsh_brake": ("harsh_brake", Severity.WARNING),
    "harsh_accel": ("harsh_accel", Severity.WARNING),
    "harsh_corner": ("harsh_turn", Severity.WARNING),
    "collision": ("crash", Severity.CRITICAL),
    "overheating": ("model_alert", Severity.WARNING),
    "misfire": ("model_alert", Severity.WARNING),
    "fuel_drop": ("model_alert", Severity.WARNING),
}
# OBD PID name -> column of edge_agent.inference.obd_features.CHANNELS, with a unit change
OBD_COLUMNS: dict[str, tuple[int, float]] = {
    "speed": (0, 3.6),  # m/s -> km/h
    "rpm": (1, 1.0),
    "coolant_temp": (2, 1.0),
    "fuel_level": (3, 1.0),
    "throttle": (4, 1.0),
    "engine_load": (5, 1.0),
}


def _now_us() -> int:
    return time.time_ns() // 1000


# (time_us, kind, source, name, value, unit): a sensor sample before its seq is reserved
_SensorRow = tuple[int, SensorKind, str, str, float, str]
SENSOR_BATCH_MAX = 1000


@dataclass
class _ImuBlock:
    acc: list[tuple[float, float, float]]
    gyro: list[tuple[float, float, float]]


class Agent:
    """Build from settings, then ``run(stop)`` (or ``step()`` in tests)."""

    def __init__(self, settings: AgentSettings, *, sources: bool = True) -> None:
        self.settings = s = settings
        memory.limit_arenas(2)  # before any thread of ours allocates
        s.state_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(s.outbox_path, s.outbox_limits(), first_seq=s.first_seq())
        self.pipeline = FixPipeline(self.outbox, s.reporting())
        self._audit: Any = None
        if s.audit_log is not None:
            self._audit = s.audit_log.open("ab")
            self.pipeline.on_commit = self._audit_commit
        self.live: dict[str, float] = {
            **{f"report_{k}": v for k, v in s.reporting_kwargs().items()},
            "batch_interval_s": s.batch_interval_s,
            "sensor_interval_s": s.sensor_interval_s,
            **{f"stop_{k}": v for k, v in s.stop_kwargs().items()},
        }
        self.inbox: Inbox = queue.Queue(maxsize=10_000)
        self.commands: queue.Queue[Command] = queue.Queue(maxsize=1000)
        self.counters: Counter[str] = Counter()
        self.uplink = Uplink(
            UplinkConfig(
                tenant=s.tenant,
                vehicle=s.vehicle,
                host=s.mqtt_host,
                port=s.mqtt_port,
                username=s.mqtt_username,
                password=s.mqtt_password.get_secret_value(),
                client_id=s.client_id,
                mqtt5=s.mqtt_protocol == "5",
                keepalive_s=s.mqtt_keepalive_s,
                session_expiry_s=s.mqtt_session_expiry_s,
                tls_ca=s.tls_ca,
                tls_cert=s.tls_cert,
                tls_key=s.tls_key,
                batch_interval_s=s.batch_interval_s,
                batch_max_fixes=s.batch_max_fixes,
                inflight_batches=s.inflight_batches,
                resend_after_s=s.resend_after_s,
                events_ack=s.events_ack,
                reconnect_max_s=s.mqtt_reconnect_max_s,
                topic_alias=s.mqtt_topic_alias,
                cloud_id=s.cloud_id,
            ),
            self.outbox,
            on_command=self._enqueue_command,
        )
        self.slots: dict[str, Any] = {}
        self.harsh: Any = None
        self.engine: Any = None
        self._load_models()
        memory.trim()  # the sessions' build scratch, freed but kept by malloc
        memory.release_file_pages()  # code run once by the imports' initialisers
        self.stops = StopTracker(
            s.state_dir / "stops.json",
            s.stops(),
            self._emit_stop,
            lambda: self.outbox.next_seq("events"),
        )
        self.route_plan = RoutePlanHandler(s.state_dir / "route_plan.json", self.stops.set_plan)
        self.stops.set_plan(self.route_plan.current)
        self.stops.recover()  # events of a stop change the last run journalled but never sent
        handlers: dict[str, Any] = {
            "route_plan": self.route_plan,
            "config": ConfigHandler(lambda: dict(self.live), _check_live, self._apply_live),
        }
        if s.models_dir is not None:
            handlers["model_update"] = ModelUpdateHandler(
                s.models_dir, self.slots, on_new_slot=self._attach_model,
                runtime=s.inference_runtime,
            )  # fmt: skip
        self.processor = CommandProcessor(s.state_dir / "commands.json", handlers, self._ack)
        self.sources: list[SourceThread] = []
        if sources:
            if s.gps_url or s.gpsd:
                self.sources.append(GpsThread(self.inbox, s.gps_url, s.gps_baud, s.gpsd))
            if s.mcu_url:
                self.sources.append(McuThread(self.inbox, s.mcu_url, s.mcu_baud))
            if s.elm327_url:
                self.sources.append(
                    ObdThread(self.inbox, s.elm327_url, s.elm327_baud, s.obd_interval_s)
                )
        self._imu = _ImuBlock([], [])
        self._last_imu: Any = None
        self._obd: dict[str, Any] = {}
        self._obd_row: list[float | None] = [None] * len(OBD_COLUMNS)
        self._ignition: bool | None = None
        self._gnss_lost = False
        self._last_fix_mono: float | None = None
        self._last_event: dict[str, float] = {}
        self._next_pump = 0.0
        self._next_sensors = time.monotonic() + s.sensor_interval_s
        self._next_stats = time.monotonic() + s.stats_interval_s
        self._next_trim = time.monotonic() + 60.0
        self._dropped_seen = self.outbox.dropped
        # Sensor samples wait here (not in the outbox) until connected: bounded, oldest dropped
        # first, every drop counted (``sensor_samples_dropped``). Their seqs are reserved when
        # they are handed to the uplink.
        self._sensors: deque[_SensorRow] = deque()
        self.can: Any = None
        if s.can_dbc is not None:
            from edge_agent.can_signals import CanSignalSampler

            self.can = CanSignalSampler(s.can_dbc, s.can_signal_names, s.can_min_interval_s)
            log.info("CAN: %d signals from %s", len(self.can.signals), s.can_dbc)

    def _audit_commit(self, seqs: list[int], _fixes: list[Any]) -> None:
        """After the commit: a line only ever names fixes the outbox had accepted."""
        os.write(self._audit.fileno(), f"{seqs[0]} {seqs[-1]}\n".encode())
        os.fsync(self._audit.fileno())

    # -- models ------------------------------------------------------------------------
    def _load_models(self) -> None:
        base = self.settings.models_dir
        if base is None:
            return
        from edge_agent.inference import InferenceError, ModelSlot, OnnxModelConfig

        for name in ("harsh_driving", "engine_anomaly"):
            folder = base / name / "current"
            if not (folder / "card.json").exists():
                folder = base / name
            if not (folder / "card.json").exists():
                log.info("no %s model under %s: that detector is off", name, base)
                continue
            try:
                config = OnnxModelConfig(
                    name=name, path=folder, runtime=self.settings.inference_runtime
                )
                self._attach_model(name, ModelSlot(config))
            except InferenceError as err:
                self.counters["model_load_failed"] += 1
                log.error("model %s not loaded: %s", name, err)

    def _attach_model(self, name: str, slot: Any) -> None:
        from edge_agent.inference.detectors import EngineAnomalyDetector, HarshDrivingDetector

        self.slots[name] = slot
        if name == "harsh_driving":
            from edge_agent.inference.orientation import Aligner

            aligner = Aligner()
            path = self.settings.state_dir / "aligner.json"
            if path.exists():  # the mounting learnt on earlier trips
                try:
                    aligner = Aligner.from_dict(json.loads(path.read_text()))
                except (OSError, ValueError) as err:
                    log.warning("aligner state %s unreadable: %s", path, err)
            self.harsh = HarshDrivingDetector(slot, aligner)
        else:
            self.engine = EngineAnomalyDetector(slot)

    # -- commands ----------------------------------------------------------------------
    def _enqueue_command(self, cmd: Command) -> None:
        try:
            self.commands.put_nowait(cmd)
        except queue.Full:
            self.counters["commands_dropped_queue_full"] += 1
            log.error("command queue full: %s v%d not taken (the cloud will resend)", cmd.id,
                      cmd.version)  # fmt: skip

    def _ack(self, cmd: Command, status: AckStatus, reason: str | None) -> None:
        now = _now_us()
        self.outbox.add_message(
            "acks",
            lambda seq: encode(CommandAck(seq, cmd.id, cmd.version, status, now, reason)),
        )
        self.uplink.notify_messages()

    def _apply_live(self, values: dict[str, float]) -> None:
        self.live = dict(values)
        self.pipeline.policy.config = _reporting_from(values)
        self.stops.config = _stops_from(values)
        self.uplink.config = replace(
            self.uplink.config, batch_interval_s=values["batch_interval_s"]
        )

    # -- events ------------------------------------------------------------------------
    def emit_event(
        self,
        kind: str,
        severity: Severity = Severity.INFO,
        details: dict[str, str | int | float | bool | None] | None = None,
        time_us: int | None = None,
    ) -> int:
        last = self.pipeline.last
        lat = lon = None
        if last is not None:
            f = to_wire_fix(last, self.pipeline.last_time_s or 0.0)
            lat, lon = f.lat_e6, f.lon_e6
        when = time_us if time_us is not None else _now_us()
        items = tuple(sorted((details or {}).items()))
        seq = self.outbox.add_message(
            "events",
            lambda seq: encode(Event(seq, when, kind, severity, lat, lon, items)),
        )
        self.counters[f"event_{kind}"] += 1
        self.uplink.notify_messages()
        log.info("event %s (seq %d) %s", kind, seq, details or "")
        return seq

    # -- inputs ------------------------------------------------------------------------
    def _on_gps(self, fix: GpsFix) -> None:
        self._last_fix_mono = time.monotonic()
        if self._gnss_lost:
            self._gnss_lost = False
            self.emit_event("gnss_restored")
        replays = self.pipeline.counters["epoch_not_after_last_accepted"]
        self.pipeline.offer(fix)
        # Every epoch, not only those the reporting policy keeps (one per 300 s when stopped):
        # the arrival's dwell is timed on the receiver's rate. Not a receiver's buffer read
        # again after a restart: old positions could "leave" a stop the vehicle is at.
        t = self.pipeline.last_time_s
        if t is not None and self.pipeline.counters["epoch_not_after_last_accepted"] == replays:
            self.stops.offer(t, fix.lat, fix.lon, fix.speed_mps)

    def _emit_stop(self, ev: StopEvent) -> None:
        self.emit_event(ev.kind, Severity.INFO, ev.details, ev.time_us)
        self.counters["stops_arrived" if ev.kind == STOP_ARRIVED else "stops_completed"] += 1

    def _on_mcu(self, records: list[Any]) -> None:
        from firmware_bridge.records import CanFrame, DigitalInputs, ImuSample

        for rec in records:
            if isinstance(rec, ImuSample):
                self._last_imu = rec
                if self.harsh is not None:
                    self._imu.acc.append(rec.accel)
                    self._imu.gyro.append(rec.gyro)
                    if len(self._imu.acc) >= 100:
                        self._classify_imu(rec.time_utc)
            elif isinstance(rec, CanFrame):
                self.counters["can_frames"] += 1
                if self.can is not None:
                    for smp in self.can.offer(rec, time.time()):
                        self._queue_sensor(
                            (int(smp.time_s * 1e6), SensorKind.CAN, "can0", smp.name,
                             smp.value, smp.unit)
                        )  # fmt: skip
            elif isinstance(rec, DigitalInputs):
                if rec.ignition != self._ignition:
                    if self._ignition is not None:
                        self.emit_event("ignition_on" if rec.ignition else "ignition_off")
                    self._ignition = rec.ignition
            else:
                self.counters[f"mcu_{type(rec).__name__}"] += 1

    def _classify_imu(self, t: float | None) -> None:
        import numpy as np

        acc = np.asarray(self._imu.acc[:100], dtype=np.float64)
        gyro = np.asarray(self._imu.gyro[:100], dtype=np.float64)
        del self._imu.acc[:100], self._imu.gyro[:100]
        speed = self.pipeline.last.speed_mps if self.pipeline.last is not None else None
        self.counters["imu_windows"] += 1
        try:
            detection = self.harsh.push(acc, gyro, speed, t or time.time())
        except Exception as err:  # a model failing at run time: count it, keep the agent
            self.counters["inference_errors"] += 1
            log.warning("harsh driving inference failed: %s", err)
            return
        if detection is not None:
            self._detected(detection)

    def _on_obd(self, readings: list[Any]) -> None:
        for r in readings:
            self._obd[r.name] = r
            col = OBD_COLUMNS.get(r.name)
            if col is not None:
                self._obd_row[col[0]] = r.value * col[1]
        if self.engine is not None and all(v is not None for v in self._obd_row):
            import numpy as np

            try:
                detection = self.engine.push(np.asarray(self._obd_row, dtype=np.float64))
            except Exception as err:
                self.counters["inference_errors"] += 1
                log.warning("engine inference failed: %s", err)
                return
            if detection is not None:
                self._detected(detection)

    def _detected(self, d: Any) -> None:
        kind, severity = DETECTION_EVENTS.get(d.kind, ("model_alert", Severity.WARNING))
        key = f"{kind}:{d.kind}"
        now = time.monotonic()
        if now - self._last_event.get(key, -1e9) < EVENT_COOLDOWN_S:
            self.counters["detections_merged"] += 1  # overlapping windows of one manoeuvre
            return
        self._last_event[key] = now
        self.emit_event(
            kind,
            severity,
            {
                "class": d.kind,
                "model": d.model,
                "model_version": d.version,
                "probability": round(d.probability, 4),
            },
        )

    # -- periodic ----------------------------------------------------------------------
    def _snapshot_sensors(self) -> None:
        """The latest IMU sample, OBD values (SI) and ignition, as rows for the buffer."""
        now = _now_us()
        imu = self._last_imu
        if imu is not None:
            for axis, v in zip("xyz", imu.accel, strict=True):
                self._queue_sensor((now, SensorKind.IMU_ACCEL, "imu0", axis, v, "m/s2"))
            for axis, v in zip("xyz", imu.gyro, strict=True):
                self._queue_sensor((now, SensorKind.IMU_GYRO, "imu0", axis, v, "rad/s"))
        for r in self._obd.values():
            value, unit = _si(r.value, r.unit)
            self._queue_sensor((now, SensorKind.OBD, "obd", f"{r.pid:02X}", value, unit))
        if self._ignition is not None:
            self._queue_sensor((now, SensorKind.DIGITAL, "io", "ignition",
                                float(self._ignition), ""))  # fmt: skip

    def _queue_sensor(self, row: _SensorRow) -> None:
        if len(self._sensors) >= self.settings.sensor_queue_max:
            if not self._sensors:
                self.counters["sensor_samples_dropped"] += 1  # a cap of 0: none are kept
                return
            self._sensors.popleft()
            self.counters["sensor_samples_dropped"] += 1
        self._sensors.append(row)
        self.counters["sensor_samples_queued"] += 1

    def _send_sensors(self) -> None:
        """Send the buffer in batches while connected; seqs are reserved per batch."""
        while self._sensors and self.uplink.connected:
            rows = [self._sensors[i] for i in range(min(SENSOR_BATCH_MAX, len(self._sensors)))]
            first = self.outbox.reserve("sensors", len(rows))
            samples = [
                SensorSample(first + i, t, kind, src, name, round(value, 6), unit)
                for i, (t, kind, src, name, value, unit) in enumerate(rows)
            ]
            if not self.uplink.publish_sensors(samples):
                return  # offline again: keep them (the reserved seqs are skipped)
            for _ in rows:
                self._sensors.popleft()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outbox": self.outbox.stats(),
            "uplink": dict(self.uplink.counters),
            "pipeline": dict(self.pipeline.counters),
            "reporting": dict(self.pipeline.policy.reasons),
            "commands": dict(self.processor.counters),
            "stops": {
                **self.stops.counters,
                "plan_stops": len(self.stops.stops),
                "pending": len(self.stops.pending()),
                "at_stop": len(self.stops.arrived),
            },
            "agent": {**self.counters, "sensor_samples_buffered": len(self._sensors)},
            "connected": self.uplink.connected,
            "rss_mb": round(memory.rss_mb(), 1),
        }
        for src in self.sources:
            counters = dict(src.counters)
            extra = getattr(getattr(src, "source", None), "counters", None)
            if extra is not None and hasattr(extra, "as_dict"):
                counters.update(extra.as_dict())
            link = getattr(src, "link", None)
            if link is not None:
                counters.update(dict(link.counts))
            out[src.name] = counters
        if self.can is not None:
            out["can"] = {
                **self.can.counts,
                **{f"dbc_{k}": v for k, v in self.can.decoder.counts.items()},
            }
        return out

    def _periodic(self, now: float) -> None:
        if now >= self._next_pump:
            self._next_pump = now + 0.25
            self.uplink.pump()
        if (
            self._last_fix_mono is not None
            and not self._gnss_lost
            and now - self._last_fix_mono > GNSS_LOST_AFTER_S
        ):
            self._gnss_lost = True
            self.emit_event("gnss_lost", Severity.WARNING)
        if now >= self._next_sensors:
            self._next_sensors = now + self.live["sensor_interval_s"]
            self._snapshot_sensors()
            self._send_sensors()
        if now >= self._next_stats:
            self._next_stats = now + self.settings.stats_interval_s
            dropped = self.outbox.dropped
            if dropped > self._dropped_seen:
                self.emit_event(
                    "outbox_drop",
                    Severity.WARNING,
                    {"dropped": dropped - self._dropped_seen, "dropped_total": dropped},
                )
                self._dropped_seen = dropped
            self._save_aligner()
            if now >= self._next_trim:  # at most once a minute (stats may run every second)
                self._next_trim = now + 60.0
                memory.trim()
                memory.release_file_pages()
            stats = self.stats()
            log.info("stats %s", json.dumps(stats, sort_keys=True, default=str))
            write_atomic(self.settings.state_dir / "stats.json", json.dumps(stats).encode())

    def _save_aligner(self) -> None:
        if self.harsh is not None:
            state = json.dumps(self.harsh.aligner.to_dict()).encode()
            write_atomic(self.settings.state_dir / "aligner.json", state)

    # -- loop --------------------------------------------------------------------------
    def step(self, timeout_s: float = 0.1) -> None:
        """One turn: take inputs (waiting up to ``timeout_s`` for the first), commit the kept
        fixes, run commands, publish what is due."""
        try:
            item: tuple[str, Any] | None = self.inbox.get(timeout=timeout_s)
        except queue.Empty:
            item = None
        while item is not None:
            kind, payload = item
            try:
                if kind == "gps":
                    self._on_gps(payload)
                elif kind == "mcu":
                    self._on_mcu(payload)
                elif kind == "obd":
                    self._on_obd(payload)
            except Exception:  # a bug on one input must not stop the vehicle's agent
                self.counters[f"{kind}_input_errors"] += 1
                log.exception("agent: handling %s input failed", kind)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                item = None
        self.pipeline.flush()
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                break
            try:
                self.processor.handle(cmd)
            except Exception:
                self.counters["command_errors"] += 1
                log.exception("agent: command %s failed outside its handler", cmd.id)
        self._periodic(time.monotonic())

    def start(self) -> None:
        self.uplink.start()
        for src in self.sources:
            src.start()

    def close(self) -> None:
        for src in self.sources:
            src.stop()
        for src in self.sources:
            src.join(2.0)
        self.step(0.0)
        self._save_aligner()
        self.uplink.stop()
        self.outbox.close()
        if self._audit is not None:
            self._audit.close()

    def run(self, stop: Any) -> None:
        """Until ``stop`` (a threading.Event) is set."""
        self.start()
        log.info("agent %s/%s running (pid %d)", self.settings.tenant, self.settings.vehicle,
                 os.getpid())  # fmt: skip
        try:
            while not stop.is_set():
                self.step(0.1)
        finally:
            self.close()


def _reporting_from(values: dict[str, float]) -> ReportingConfig:
    return ReportingConfig(
        max_interval_s=values["report_max_interval_s"],
        stopped_interval_s=values["report_stopped_interval_s"],
        min_distance_m=values["report_min_distance_m"],
        heading_deg=values["report_heading_deg"],
        min_speed_mps=values["report_min_speed_mps"],
        min_interval_s=values["report_min_interval_s"],
    )


def _stops_from(values: dict[str, float]) -> StopConfig:
    return StopConfig(
        arrive_radius_m=values["stop_arrive_radius_m"],
        arrive_speed_mps=values["stop_arrive_speed_mps"],
        arrive_dwell_s=values["stop_arrive_dwell_s"],
        depart_radius_m=values["stop_depart_radius_m"],
    )


def _check_live(values: dict[str, float]) -> None:
    _reporting_from(values)
    _stops_from(values)
    if not 0 < values["batch_interval_s"] <= 3600 or values["sensor_interval_s"] <= 0:
        raise ValueError("batch_interval_s in (0, 3600], sensor_interval_s > 0")


_SI = {"degC": (1.0, 273.15, "K"), "rpm": (1 / 60, 0.0, "1/s"), "%": (0.01, 0.0, "")}


def _si(value: float, unit: str) -> tuple[float, str]:
    """A bridge value in the wire's SI units (K, 1/s, fractions)."""
    scale, offset, si = _SI.get(unit, (1.0, 0.0, unit))
    return value * scale + offset, si
