"""Thresholds of the geo rules (SI units: m, m/s, s) and the process settings of `flota ingest
geo`. Rules are per tenant: the defaults below, overridden by a ``geo_tenant_rules`` row."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field

from cloud.settings import DatabaseSettings, KafkaSettings

_NON_NEGATIVE = (
    "trip_start_motion_s", "trip_end_stop_s", "stop_min_s", "speeding_min_s", "idle_min_s",
    "geofence_dwell_s", "speed_limit_mps", "max_speed_mps",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GeoRules:
    """What counts as moving, a trip, a stop, speeding, idling and a geofence visit."""

    moving_speed_mps: float = 2.0  # at or above: moving (7.2 km/h)
    still_speed_mps: float = 1.0  # below: standing (GPS drift when parked stays under it)
    trip_start_motion_s: float = 30.0  # sustained motion that starts a trip (no ignition data)
    trip_end_stop_s: float = 300.0  # a stop this long ends the trip (at the stop's start)
    stop_min_s: float = 120.0  # standing this long is a stop
    speed_limit_mps: float = 25.0  # 90 km/h
    speeding_min_s: float = 10.0  # shorter excursions above the limit are not an episode
    idle_min_s: float = 120.0  # ignition on and standing this long is idling
    max_speed_mps: float = 70.0  # 252 km/h: reaching a fix faster is a GPS jump
    jump_slack_m: float = 50.0  # distance noise tolerated before judging a jump
    jump_reanchor_fixes: int = 3  # consecutive consistent "jumps": the vehicle really moved
    geofence_confirm_fixes: int = 2  # consecutive fixes to confirm an enter or exit
    geofence_dwell_s: float = 600.0  # inside this long: one dwell event per visit

    def __post_init__(self) -> None:
        if not 0 < self.still_speed_mps <= self.moving_speed_mps:
            raise ValueError("need 0 < still_speed_mps <= moving_speed_mps")
        if self.geofence_confirm_fixes < 1 or self.jump_reanchor_fixes < 1:
            raise ValueError("fix counts must be at least 1")
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def with_overrides(self, overrides: dict[str, Any]) -> GeoRules:
        """These rules with the non-null overrides of one tenant applied."""
        known = {k: v for k, v in overrides.items() if v is not None and hasattr(self, k)}
        return replace(self, **known) if known else self


class GeoSettings(KafkaSettings, DatabaseSettings):
    """`flota ingest geo`: telemetry + vehicle events -> domain events (and the sink)."""

    geo_consumer_group: str = "flota-geo"
    geo_sink_group: str = "flota-geo-sink"
    geo_batch_max_records: int = Field(default=2000, ge=1)
    geo_batch_max_wait_ms: int = Field(default=200, ge=1)
    geo_fence_refresh_s: float = Field(default=30.0, gt=0)
    geo_h3_resolution: int = Field(default=9, ge=0, le=15)
    geo_metrics_port: int | None = None  # Prometheus /metrics on 127.0.0.1; None: not served
