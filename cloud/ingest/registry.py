"""Which devices may send: the bridge's cache of the ``devices`` table (or a registry file).

The bridge asks :meth:`DeviceRegistry.is_registered` for every message, so the answer comes
from memory; a background thread refreshes the set every ``refresh_s``. A refresh that fails
keeps the last good set (and is logged and counted): a database hiccup must not turn every
device away. The first load must succeed, or the bridge does not start.

The v1 wire contract carries the vehicle only in the MQTT topic, never in the telemetry payload,
so "the payload's vehicle matches the topic's" cannot be checked here: the broker's ACL binds
each device's credentials to its own topics (``cloud.ingest.mqtt_auth``), and that binding is
what makes the topic's vehicle trustworthy.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from cloud.db.connection import connect

log = logging.getLogger(__name__)

Key = tuple[str, str]


def load_from_database(url: str) -> frozenset[Key]:
    """Registered (tenant, vehicle) pairs from the ``devices`` table."""
    with connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT tenant_id, vehicle_id FROM devices WHERE registered").fetchall()
    return frozenset((str(t), str(v)) for t, v in rows)


def load_from_file(path: Path) -> frozenset[Key]:
    """Pairs from a JSON registry: ``{"devices": [{"tenant": .., "vehicle": ..}, ...]}`` or a
    bare list of such objects (the local stack's devices.json files)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data["devices"] if isinstance(data, dict) else data
    return frozenset(
        (str(d["tenant"]), str(d["vehicle"])) for d in items if d.get("registered", True)
    )


class DeviceRegistry:
    """A periodically refreshed set of registered devices."""

    def __init__(self, load: Callable[[], frozenset[Key]], refresh_s: float = 30.0) -> None:
        self._load = load
        self.refresh_s = refresh_s
        self._devices = load()
        self.refresh_failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        log.info("device registry: %d registered devices", len(self._devices))

    def __len__(self) -> int:
        return len(self._devices)

    def is_registered(self, tenant: str, vehicle: str) -> bool:
        return (tenant, vehicle) in self._devices

    def refresh(self) -> bool:
        """Reload now; on failure keep the last good set and return False."""
        try:
            devices = self._load()
        except Exception as err:  # any loader failure: keep serving the last good set
            self.refresh_failures += 1
            log.warning("device registry refresh failed (keeping %d): %s", len(self), err)
            return False
        if devices != self._devices:
            log.info("device registry: %d -> %d devices", len(self._devices), len(devices))
        self._devices = devices
        return True

    def start(self) -> None:
        """Refresh in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(self.refresh_s):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="registry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
