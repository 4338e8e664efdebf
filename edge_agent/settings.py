"""The agent's one settings class, read from ``FLOTA_AGENT_*`` environment variables (or a
``.env``-style file) and validated at start: a vehicle must not drive off with a broker password
copied from an example, or a TLS key path that does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edge_agent.outbox import OutboxLimits
from edge_agent.reporting import ReportingConfig

DEFAULT_SECRETS = frozenset(
    {"", "changeme", "change-me", "password", "secret", "admin", "flota", "test", "public"}
)
_ID = r"^[A-Za-z0-9_-]{1,64}$"


def _strong_secret(value: SecretStr) -> SecretStr:
    if value.get_secret_value().strip().lower() in DEFAULT_SECRETS:
        raise ValueError("refusing a default or empty MQTT password; set a real one")
    return value


def _existing_file(value: Path | None) -> Path | None:
    if value is not None and not value.is_file():
        raise ValueError(f"{value} is not a readable file")
    return value


Secret = Annotated[SecretStr, AfterValidator(_strong_secret)]
TlsFile = Annotated[Path | None, AfterValidator(_existing_file)]


class AgentSettings(BaseSettings):
    """Everything ``flota agent run`` needs. Units: seconds, metres, degrees, m/s."""

    model_config = SettingsConfigDict(env_prefix="FLOTA_AGENT_", extra="forbid", frozen=True)

    tenant: str = Field(pattern=_ID)
    vehicle: str = Field(pattern=_ID)

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=8883, ge=1, le=65535)
    mqtt_username: str = Field(min_length=1)
    mqtt_password: Secret
    mqtt_client_id: str | None = None  # default "{tenant}.{vehicle}": stable -> persistent session
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=600)
    mqtt_session_expiry_s: int = Field(default=7 * 86400, ge=0)
    mqtt_topic_alias: bool = True  # MQTT 5 topic alias for telemetry (about 3 bytes/fix less)
    mqtt_reconnect_max_s: int = Field(default=60, ge=1, le=3600)  # backoff 1 s doubling up to this
    tls_ca: TlsFile = None
    tls_cert: TlsFile = None
    tls_key: TlsFile = None

    gps_url: str | None = None  # any pyserial URL or device path
    gps_baud: int | None = Field(default=None, gt=0)  # None: detect
    gpsd: str | None = None  # "host:port" of a gpsd to use instead of a serial receiver
    mcu_url: str | None = None
    mcu_baud: int = Field(default=115_200, gt=0)
    elm327_url: str | None = None
    elm327_baud: int = Field(default=38_400, gt=0)
    obd_interval_s: float = Field(default=1.0, gt=0)
    models_dir: Path | None = None  # holds <name>/current -> a model folder

    state_dir: Path = Path("/var/lib/flota-agent")
    outbox_max_rows: int = Field(default=500_000, ge=1)
    outbox_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # First seq of a new outbox; default: 100 x the Unix time at creation, so a device whose
    # state was wiped never reuses the seqs of its earlier life (up to 100 rows/s on average).
    outbox_first_seq: int | None = Field(default=None, ge=1, lt=2**62)
    # Diagnostics (and the fault tests): append "first last" after every outbox commit of
    # fixes, fsynced. Costs one more fsync per commit; off by default.
    audit_log: Path | None = None
    events_ack: Literal["stored", "puback"] = "puback"  # until the cloud stores events

    report_max_interval_s: float = Field(default=30.0, gt=0)
    report_stopped_interval_s: float = Field(default=300.0, gt=0)
    report_min_distance_m: float = Field(default=200.0, gt=0)
    report_heading_deg: float = Field(default=10.0, gt=0, lt=180)
    report_min_speed_mps: float = Field(default=2.0, ge=0)
    report_min_interval_s: float = Field(default=1.0, gt=0)

    batch_interval_s: float = Field(default=10.0, gt=0, le=3600)
    batch_max_fixes: int = Field(default=250, ge=1, le=4096)
    inflight_batches: int = Field(default=20, ge=1, le=1000)
    resend_after_s: float = Field(default=60.0, gt=0)
    sensor_interval_s: float = Field(default=10.0, gt=0)
    stats_interval_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _tls_pairs(self) -> AgentSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        if self.tls_cert is not None and self.tls_ca is None:
            raise ValueError("a client certificate needs tls_ca to check the broker")
        if self.gps_url and self.gpsd:
            raise ValueError("give gps_url or gpsd, not both")
        ReportingConfig(**self.reporting_kwargs())  # same checks as at run time
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt_client_id or f"{self.tenant}.{self.vehicle}"

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite"

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

    def first_seq(self) -> int:
        import time

        return self.outbox_first_seq or int(time.time() * 100)

    def outbox_limits(self) -> OutboxLimits:
        return OutboxLimits(max_rows=self.outbox_max_rows, max_bytes=self.outbox_max_bytes)
