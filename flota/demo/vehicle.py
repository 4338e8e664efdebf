"""One demo vehicle: a simulated trip played in real time into a real edge agent.

The vehicle simulator (``models.sim``) drives road-like trips that start at the depot and chain
one after another. Its streams reach the agent the way the hardware presents them, each on its
own pseudo-terminal:

- NMEA 0183 (GGA + RMC at 1 Hz) from a GNSS receiver (``edge_agent.simpeer.GpsPeer``);
- the MCU link (COBS frames, CRC, acks) from the vehicle microcontroller
  (``firmware_bridge.mcu.simulator``), carrying the trip's IMU at 100 Hz and the ignition;
- an ELM327 adapter (``firmware_bridge.elm327.peer``) answering the trip's OBD-II values.

The agent is ``flota agent run`` in a child process with its own state folder, outbox and
models, exactly as on a vehicle; only its settings point at the pseudo-terminals.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from flota.demo.infra import Child, spawn
from flota.demo.player import PlanStop, TripPlayer
from flota_wire import Fix

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DBC = Path(__file__).resolve().parent / "can" / "abs.dbc"
WHEEL_SPEEDS = "BREMSE_33"  # whlspeed_FL, _FR, _RL, _RR in m/s, id 835, 10 Hz on a real bus
EDGE_MODELS = ("harsh_driving", "engine_anomaly")


class AuditLog:
    """The agent's audit log ("first last" per outbox commit, appended and fsynced), read
    incrementally: the live view asks every second, so only new complete lines are parsed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seqs: set[int] = set()
        self._offset = 0  # bytes of complete lines already parsed

    def seqs(self) -> set[int]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                new = f.read()
        except OSError:
            return set(self._seqs)
        complete = new[: new.rfind(b"\n") + 1]  # a torn last line waits for its newline
        self._offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                self._seqs.update(range(int(parts[0]), int(parts[1]) + 1))
        return set(self._seqs)


class DemoVehicle:
    """The peers on their pseudo-terminals, the trip player and the agent process."""

    def __init__(
        self, device: Any, seed: int, workdir: Path, origin: tuple[float, float],
        trip_length_m: float,
    ) -> None:  # fmt: skip
        from edge_agent.simpeer import GpsPeer
        from firmware_bridge.elm327.peer import Elm327Peer
        from firmware_bridge.mcu.simulator import McuSimulator

        self.device = device  # backends.Device: tenant, vehicle and MQTT credentials
        self.tenant, self.vehicle = device.tenant, device.vehicle
        self.dir = workdir / "vehicles" / f"{self.tenant}.{self.vehicle}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.player = TripPlayer(seed, origin, trip_length_m, self.next_stop)
        self.gps = GpsPeer()
        self.elm = Elm327Peer()
        self.mcu = McuSimulator(
            str(self.dir / "mcu"), imu=self.player.imu, seed=seed, can=(self._can_source(),)
        )
        self.audit = AuditLog(self.audit_path)
        self.child: Child | None = None
        self._thread: threading.Thread | None = None

    def _can_source(self) -> Any:
        """BREMSE_33 at 10 Hz, encoded with cantools from the trip's speed."""
        import cantools

        from firmware_bridge.mcu.simulator import CanSource

        db = cantools.database.load_file(DBC)
        assert isinstance(db, cantools.database.can.Database)
        msg = db.get_message_by_name(WHEEL_SPEEDS)

        def data(_i: int) -> bytes:
            speeds = {k: min(max(v, 0.0), 100.0) for k, v in self.player.wheel_speeds().items()}
            return bytes(msg.encode(speeds))

        return CanSource(msg.frame_id, 0.1, data)

    def next_stop(self, served: set[str]) -> PlanStop | None:
        """The first stop of the agent's current plan (as it stored it) not served yet."""
        try:
            plan = json.loads((self.state_dir / "route_plan.json").read_text())
            for s in plan.get("stops") or ():
                if s["id"] not in served:
                    return PlanStop(s["id"], float(s["lat"]), float(s["lon"]),
                                    float(s.get("service_s") or 0.0))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # no plan yet, or one being replaced
        return None

    @property
    def audit_path(self) -> Path:
        return self.dir / "accepted.log"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    def agent_env(self, host: str, port: int, mqtt5: bool) -> dict[str, str]:
        models = self.dir / "models"
        for name in EDGE_MODELS:  # a copy each: a model update installs into this folder
            if not (models / name).exists():
                shutil.copytree(REPO / "models" / "onnx" / name, models / name)
        return {
            "FLOTA_AGENT_TENANT": self.tenant,
            "FLOTA_AGENT_VEHICLE": self.vehicle,
            "FLOTA_AGENT_MQTT_HOST": host,
            "FLOTA_AGENT_MQTT_PORT": str(port),
            "FLOTA_AGENT_MQTT_USERNAME": self.device.username,
            "FLOTA_AGENT_MQTT_PASSWORD": self.device.password,
            "FLOTA_AGENT_MQTT_RECONNECT_MAX_S": "5",
            "FLOTA_AGENT_MQTT_PROTOCOL": "5" if mqtt5 else "3.1.1",  # amqtt speaks 3.1.1
            "FLOTA_AGENT_GPS_URL": self.gps.path,
            "FLOTA_AGENT_GPS_BAUD": "9600",
            "FLOTA_AGENT_MCU_URL": str(self.dir / "mcu"),
            "FLOTA_AGENT_ELM327_URL": self.elm.path,
            "FLOTA_AGENT_MODELS_DIR": str(models),
            "FLOTA_AGENT_CAN_DBC": str(DBC),
            "FLOTA_AGENT_CAN_SIGNALS": ",".join(
                f"{WHEEL_SPEEDS}.whlspeed_{w}" for w in ("FL", "FR", "RL", "RR")
            ),
            "FLOTA_AGENT_CAN_MIN_INTERVAL_S": "5",
            "FLOTA_AGENT_STATE_DIR": str(self.state_dir),
            "FLOTA_AGENT_AUDIT_LOG": str(self.audit_path),
            # A lively demo: report at least every 3 s, send every 2 s, resend after 15 s.
            "FLOTA_AGENT_REPORT_MAX_INTERVAL_S": "3",
            "FLOTA_AGENT_REPORT_MIN_DISTANCE_M": "40",
            "FLOTA_AGENT_BATCH_INTERVAL_S": "2",
            "FLOTA_AGENT_RESEND_AFTER_S": "15",
            "FLOTA_AGENT_SENSOR_INTERVAL_S": "5",
            "FLOTA_AGENT_STATS_INTERVAL_S": "1",
        }

    def start_peers(self) -> None:
        self.mcu.start()
        self.mcu.set_inputs(0b1)  # ignition on
        self.elm.start()

    def start_agent(self, host: str, port: int, mqtt5: bool, base_env: dict[str, str]) -> None:
        env = {k: v for k, v in base_env.items() if not k.startswith("FLOTA_AGENT_")}
        env.update(self.agent_env(host, port, mqtt5))
        env["FLOTA_AGENT_CLOUD_ID"] = base_env.get("FLOTA_CLOUD_ID", "flota")  # its cloud
        argv = [sys.executable, "-m", "flota", "agent", "run"]
        self.child = spawn(f"agent-{self.vehicle}", argv, self.dir, env)

    def drive(self, seconds: float, stop: threading.Event) -> None:
        self._thread = threading.Thread(
            target=self.player.play,
            args=(self, self.elm, stop, seconds),
            name=f"drive-{self.vehicle}",
            daemon=True,
        )
        self._thread.start()

    def write_fix(self, fix: Fix) -> None:
        from edge_agent.simpeer import nmea_epoch

        try:
            os.write(self.gps.master, nmea_epoch(fix))
            self.gps.epochs += 1
        except OSError as err:
            log.debug("%s: GPS pty closed: %s", self.vehicle, err)

    @property
    def driving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, Any]:
        """The agent's own counters (it rewrites stats.json every second); {} before then."""
        try:
            out: dict[str, Any] = json.loads((self.state_dir / "stats.json").read_text())
        except (OSError, ValueError):
            return {}
        return out

    def accepted(self) -> set[int]:
        """Every seq the agent's outbox committed."""
        return self.audit.seqs()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=10.0)
        for peer in (self.mcu, self.elm):
            try:
                peer.stop()
            except OSError as err:
                log.debug("%s: stopping a peer: %s", self.vehicle, err)
        try:
            self.gps.close()
        except OSError as err:
            log.debug("%s: closing the GPS pty: %s", self.vehicle, err)
