"""The agent's one settings class, read from ``FLOTA_AGENT_*`` environment variables, a
``.env``-style file or a TOML file, and validated at start: a vehicle must not drive off with a
broker password copied from an example, or a TLS key path that does not exist.

A frozen dataclass with its own small loader, not pydantic-settings: on the vehicle, importing
pydantic alone cost 12-14 MB of the agent's 80 MB budget. Validation is kept (types, ranges,
patterns, cross-field rules) and every problem is reported at once, one line per field.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_agent.outbox import OutboxLimits
from edge_agent.reporting import ReportingConfig
from edge_agent.stops import StopConfig

log = logging.getLogger(__name__)

PREFIX = "FLOTA_AGENT_"
DEFAULT_SECRETS = frozenset(
    {"", "changeme", "change-me", "password", "secret", "admin", "flota", "test", "public"}
)
_ID = r"[A-Za-z0-9_-]{1,64}"
# The cloud whose stored acks this agent believes; the cloud's FLOTA_CLOUD_ID defaults to it.
DEFAULT_CLOUD_ID = "flota"
_ANY_CLOUD = frozenset({"", "*", "any"})


class SettingsError(ValueError):
    """Settings the agent refuses to start with; ``problems`` holds one line per field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        n = len(problems)
        super().__init__(f"{n} bad setting{'s' if n != 1 else ''}:\n  " + "\n  ".join(problems))


class Secret:
    """A string that does not print itself (logs, reprs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _opt(default: Any = MISSING, **rules: Any) -> Any:
    """A field with validation rules: ge, gt, le, lt, pattern, min_len, choices, kind."""
    if default is MISSING:
        return field(metadata=rules)
    return field(default=default, metadata=rules)


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    """Everything the agent needs. Units: seconds, metres, degrees, m/s. Every field is also an
    environment variable ``FLOTA_AGENT_<FIELD>``; ``load_settings()`` reads them."""

    tenant: str = _opt(pattern=_ID)
    vehicle: str = _opt(pattern=_ID)

    mqtt_host: str = _opt("127.0.0.1", min_len=1)
    mqtt_port: int = _opt(8883, ge=1, le=65535)
    mqtt_username: str = _opt(min_len=1)
    mqtt_password: Secret = field(metadata={"kind": "secret"})
    mqtt_client_id: str | None = None  # default "{tenant}.{vehicle}": stable -> persistent session
    mqtt_protocol: str = _opt("5", choices=("5", "3.1.1"))
    mqtt_keepalive_s: int = _opt(30, ge=5, le=600)
    mqtt_session_expiry_s: int = _opt(7 * 86400, ge=0)
    mqtt_topic_alias: bool = True  # MQTT 5 topic alias for telemetry (about 3 bytes/fix less)
    mqtt_reconnect_max_s: int = _opt(60, ge=1, le=3600)  # backoff 1 s doubling up to this
    tls_ca: Path | None = field(default=None, metadata={"kind": "file"})
    tls_cert: Path | None = field(default=None, metadata={"kind": "file"})
    tls_key: Path | None = field(default=None, metadata={"kind": "file"})
    # Stored acks are believed only from this cloud (StoredAck.cloud); "", "*" or "any": from
    # any cloud, acks without a cloud id included. Also read from FLOTA_CLOUD_ID.
    cloud_id: str | None = field(default=DEFAULT_CLOUD_ID, metadata={"kind": "cloud"})

    gps_url: str | None = None  # any pyserial URL or device path
    gps_baud: int | None = field(default=None, metadata={"gt": 0})  # None: detect
    gpsd: str | None = None  # "host:port" of a gpsd to use instead of a serial receiver
    mcu_url: str | None = None
    mcu_baud: int = _opt(115_200, gt=0)
    elm327_url: str | None = None
    elm327_baud: int = _opt(38_400, gt=0)
    obd_interval_s: float = _opt(1.0, gt=0)
    models_dir: Path | None = None  # holds <name>/current -> a model folder
    # onnxruntime (default: within the 80 MB budget once library pages are released, see
    # edge_agent.memory); numpy: the tree-ensemble evaluator (about 30 MB less resident memory);
    # auto: numpy for graphs it supports, else onnxruntime. Every model passes its self-test.
    inference_runtime: str = _opt("onnxruntime", choices=("onnxruntime", "numpy", "auto"))
    # CAN frames from the MCU decoded with this DBC into sensor samples
    can_dbc: Path | None = field(default=None, metadata={"kind": "file"})
    can_signals: str = ""  # comma-separated "Signal" or "Message.Signal"; empty: all of the DBC
    can_min_interval_s: float = _opt(1.0, ge=0)  # at most one sample per signal this often

    state_dir: Path = Path("/var/lib/flota-agent")
    outbox_max_rows: int = _opt(500_000, ge=1)
    outbox_max_bytes: int = _opt(64 * 1024 * 1024, ge=1024)
    # First seq of a new outbox; default: 100 x the Unix time at creation, so a device whose
    # state was wiped never reuses the seqs of its earlier life (up to 100 rows/s on average).
    outbox_first_seq: int | None = field(default=None, metadata={"ge": 1, "lt": 2**62})
    # Diagnostics (and the fault tests): append "first last" after every outbox commit of
    # fixes, fsynced. Costs one more fsync per commit; off by default.
    audit_log: Path | None = None
    # Events are deleted on the store's StoredAck (the cloud stores and acknowledges them);
    # "puback": on the broker's PUBACK, for a cloud that does not acknowledge events.
    events_ack: str = _opt("stored", choices=("stored", "puback"))

    report_max_interval_s: float = _opt(30.0, gt=0)
    report_stopped_interval_s: float = _opt(300.0, gt=0)
    report_min_distance_m: float = _opt(200.0, gt=0)
    report_heading_deg: float = _opt(10.0, gt=0, lt=180)
    report_min_speed_mps: float = _opt(2.0, ge=0)
    report_min_interval_s: float = _opt(1.0, gt=0)

    # Route-plan progress (edge_agent.stops): arrived = within the radius at <= the speed for
    # the dwell; completed = then farther than the departure radius.
    stop_arrive_radius_m: float = _opt(75.0, gt=0)
    stop_arrive_speed_mps: float = _opt(2.5, gt=0)
    stop_arrive_dwell_s: float = _opt(10.0, ge=0)
    stop_depart_radius_m: float = _opt(150.0, gt=0)

    batch_interval_s: float = _opt(10.0, gt=0, le=3600)
    batch_max_fixes: int = _opt(250, ge=1, le=4096)
    inflight_batches: int = _opt(20, ge=1, le=1000)
    resend_after_s: float = _opt(60.0, gt=0)
    sensor_interval_s: float = _opt(10.0, gt=0)
    sensor_queue_max: int = _opt(2000, ge=0, le=1_000_000)  # samples kept while offline
    stats_interval_s: float = _opt(60.0, gt=0)

    def __post_init__(self) -> None:
        problems: list[str] = []
        for f in fields(self):
            try:
                value = _coerce(f.type, getattr(self, f.name), f.metadata)
                _check(value, f.metadata)
            except (TypeError, ValueError) as err:
                problems.append(f"{f.name}: {err}")
                continue
            object.__setattr__(self, f.name, value)
        if not problems:
            problems = self._cross_checks()
        if problems:
            raise SettingsError(problems)

    def _cross_checks(self) -> list[str]:
        out = []
        if (self.tls_cert is None) != (self.tls_key is None):
            out.append("tls_cert/tls_key: give both tls_cert and tls_key, or neither")
        if self.tls_cert is not None and self.tls_ca is None:
            out.append("tls_ca: a client certificate needs tls_ca to check the broker")
        if self.gps_url and self.gpsd:
            out.append("gps_url/gpsd: give gps_url or gpsd, not both")
        try:
            ReportingConfig(**self.reporting_kwargs())  # same checks as at run time
        except ValueError as err:
            out.append(f"report_*: {err}")
        try:
            self.stops()
        except ValueError as err:
            out.append(f"stop_*: {err}")
        return out

    @property
    def client_id(self) -> str:
        return self.mqtt_client_id or f"{self.tenant}.{self.vehicle}"

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite"

    @property
    def can_signal_names(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.can_signals.split(",") if s.strip())

    def reporting_kwargs(self) -> dict[str, float]:
        return {
            "max_interval_s": self.report_max_interval_s,
            "stopped_interval_s": self.report_stopped_interval_s,
            "min_distance_m": self.report_min_distance_m,
            "heading_deg": self.report_heading_deg,
            "min_speed_mps": self.report_min_speed_mps,
            "min_interval_s": self.report_min_interval_s,
        }

    def reporting(self) -> ReportingConfig:
        return ReportingConfig(**self.reporting_kwargs())

    def stop_kwargs(self) -> dict[str, float]:
        return {
            "arrive_radius_m": self.stop_arrive_radius_m,
            "arrive_speed_mps": self.stop_arrive_speed_mps,
            "arrive_dwell_s": self.stop_arrive_dwell_s,
            "depart_radius_m": self.stop_depart_radius_m,
        }

    def stops(self) -> StopConfig:
        return StopConfig(**self.stop_kwargs())

    def first_seq(self) -> int:
        return self.outbox_first_seq or int(time.time() * 100)

    def outbox_limits(self) -> OutboxLimits:
        return OutboxLimits(max_rows=self.outbox_max_rows, max_bytes=self.outbox_max_bytes)


FIELD_NAMES = tuple(f.name for f in fields(AgentSettings))
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _coerce(annotation: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    """``value`` (a string from the environment, or already typed) as the field's type."""
    kind = meta.get("kind")
    if kind == "secret":
        if hasattr(value, "get_secret_value"):  # ours, or a pydantic SecretStr from a caller
            value = value.get_secret_value()
        if not isinstance(value, str):
            raise TypeError("expected a string")
        if value.strip().lower() in DEFAULT_SECRETS:
            raise ValueError("refusing a default or empty MQTT password; set a real one")
        return Secret(value)
    if kind == "cloud":
        if value is None or str(value).strip().lower() in _ANY_CLOUD:
            return None
        if not re.fullmatch(_ID, str(value)):
            raise ValueError(f"{value!r} is not an id [A-Za-z0-9_-]{{1,64}} (or '*' for any)")
        return str(value)
    text = str(annotation)
    optional = text.endswith("| None")
    base = text.removesuffix("| None").strip()
    if value is None or (optional and isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise ValueError("required")
    if base == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ValueError(f"{value!r} is not a boolean (true/false, 1/0, yes/no, on/off)")
    if base == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not an integer")
        try:
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an integer") from None
    if base == "float":
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a number") from None
        if not math.isfinite(out):
            raise ValueError(f"{value!r} is not a finite number")
        return out
    if base == "Path":
        path = Path(value)
        if kind == "file" and not path.is_file():
            raise ValueError(f"{path} is not a readable file")
        return path
    if base == "str":
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    raise TypeError(f"no loader for type {text}")  # a field added without one: a bug


def _check(value: Any, meta: Mapping[str, Any]) -> None:
    if value is None:
        return
    if "ge" in meta and not value >= meta["ge"]:
        raise ValueError(f"{value} is below the minimum {meta['ge']}")
    if "gt" in meta and not value > meta["gt"]:
        raise ValueError(f"{value} must be greater than {meta['gt']}")
    if "le" in meta and not value <= meta["le"]:
        raise ValueError(f"{value} is above the maximum {meta['le']}")
    if "lt" in meta and not value < meta["lt"]:
        raise ValueError(f"{value} must be less than {meta['lt']}")
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        raise ValueError(f"{value!r} does not match {meta['pattern']}")
    if "min_len" in meta and len(value) < meta["min_len"]:
        raise ValueError("must not be empty")
    if "choices" in meta and value not in meta["choices"]:
        raise ValueError(f"{value!r} is not one of {', '.join(meta['choices'])}")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (``export`` and quotes allowed, ``#`` comments) as a dict."""
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError([f"{path}:{n}: not a KEY=value line"])
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def _from_file(path: Path) -> dict[str, Any]:
    """Field values from a file: TOML (field names, top level or an [agent] table) or
    ``FLOTA_AGENT_*=value`` lines. Unknown keys are refused (a typo must not go unnoticed)."""
    if not path.is_file():
        raise SettingsError([f"settings file {path} does not exist"])
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise SettingsError([f"{path}: {err}"]) from err
        table = data.get("agent", data)
        unknown = sorted(set(table) - set(FIELD_NAMES))
        if unknown:
            raise SettingsError([f"{path}: unknown keys {', '.join(unknown)}"])
        return dict(table)
    values: dict[str, Any] = {}
    unknown = []
    for key, value in read_env_file(path).items():
        name = key.upper().removeprefix(PREFIX).lower()
        if key.upper().startswith(PREFIX) and name in FIELD_NAMES:
            values[name] = value
        elif key.upper() == "FLOTA_CLOUD_ID":
            values.setdefault("cloud_id", value)
        else:
            unknown.append(key)
    if unknown:
        raise SettingsError([f"{path}: unknown variables {', '.join(sorted(unknown))}"])
    return values


def load_settings(
    env_file: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> AgentSettings:
    """Settings from ``overrides``, then the environment (``FLOTA_AGENT_<FIELD>``, case
    insensitive; ``FLOTA_CLOUD_ID`` for ``cloud_id``), then ``env_file``, then the defaults.
    Unknown ``FLOTA_AGENT_*`` variables in the environment are logged, in a file refused."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = _from_file(env_file) if env_file is not None else {}
    cloud = env.get("FLOTA_CLOUD_ID")
    if cloud is not None:
        values["cloud_id"] = cloud
    for key, value in env.items():
        upper = key.upper()
        if not upper.startswith(PREFIX):
            continue
        name = upper.removeprefix(PREFIX).lower()
        if name in FIELD_NAMES:
            values[name] = value
        else:
            log.warning("unknown setting %s ignored (known: docs/agent.md)", key)
    values.update(overrides)
    missing = [
        f.name
        for f in fields(AgentSettings)
        if f.name not in values and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:  # report these and every other bad value at once
        problems = [f"{m}: required (set {PREFIX}{m.upper()})" for m in missing]
        for f in fields(AgentSettings):
            if f.name in values:
                try:
                    _check(_coerce(f.type, values[f.name], f.metadata), f.metadata)
                except (TypeError, ValueError) as err:
                    problems.append(f"{f.name}: {err}")
        raise SettingsError(problems)
    return AgentSettings(**values)
