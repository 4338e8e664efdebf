"""Adaptive reporting: which receiver epochs become outbox rows.

As commercial trackers do (Teltonika's "min period / min distance / min angle"), a fix is
reported when any of these holds since the last reported one:

- time: ``max_interval_s`` has passed (``stopped_interval_s`` while standing still);
- distance: the vehicle is ``min_distance_m`` away from it;
- heading: the course differs by ``heading_deg`` or more, counted only while moving faster
  than ``min_speed_mps`` (a standing receiver's course is noise).

Never more often than ``min_interval_s``. A straight road costs a fix per ``min_distance_m``
or ``max_interval_s``; a turn costs one per ``heading_deg`` of it, so its shape survives.
``path_error`` measures what the thinning costs: the cross-track distance from every epoch of
the full trace to the reported polyline.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class ReportingConfig:
    max_interval_s: float = 30.0
    stopped_interval_s: float = 300.0
    min_distance_m: float = 200.0
    heading_deg: float = 10.0
    min_speed_mps: float = 2.0
    min_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.min_interval_s <= self.max_interval_s <= self.stopped_interval_s:
            raise ValueError("need 0 < min_interval_s <= max_interval_s <= stopped_interval_s")
        if self.min_distance_m <= 0 or not 0 < self.heading_deg < 180 or self.min_speed_mps < 0:
            raise ValueError("min_distance_m > 0, 0 < heading_deg < 180, min_speed_mps >= 0")


@dataclass(frozen=True, slots=True)
class Sample:
    """The fields of an epoch the policy looks at (seconds, degrees, m/s)."""

    t: float
    lat: float
    lon: float
    speed_mps: float | None = None
    track_deg: float | None = None


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def heading_diff_deg(a: float, b: float) -> float:
    """Smallest angle between two courses, 0..180."""
    d = abs(a - b) % 360.0
    return 360.0 - d if d > 180.0 else d


class ReportingPolicy:
    """Stateful: ``offer`` each epoch in time order; True means report it."""

    def __init__(self, config: ReportingConfig | None = None) -> None:
        self.config = config or ReportingConfig()
        self._last: Sample | None = None
        self.offered = 0
        self.reported = 0
        self.reasons: dict[str, int] = {"first": 0, "time": 0, "distance": 0, "heading": 0}

    def offer(self, s: Sample) -> bool:
        self.offered += 1
        reason = self._reason(s)
        if reason is None:
            return False
        self.reasons[reason] += 1
        self.reported += 1
        self._last = s
        return True

    def force(self, s: Sample) -> None:
        """Mark ``s`` as reported for another reason (an event wants its position)."""
        self._last = s

    def _reason(self, s: Sample) -> str | None:
        last = self._last
        c = self.config
        if last is None:
            return "first"
        dt = s.t - last.t
        if dt < 0:
            return None  # an epoch older than the last report (clock step): not a new position
        if dt < c.min_interval_s:
            return None
        moving = s.speed_mps is not None and s.speed_mps >= c.min_speed_mps
        if dt >= (c.max_interval_s if moving or s.speed_mps is None else c.stopped_interval_s):
            return "time"
        if distance_m(last.lat, last.lon, s.lat, s.lon) >= c.min_distance_m:
            return "distance"
        if (
            moving
            and s.track_deg is not None
            and last.track_deg is not None
            and heading_diff_deg(s.track_deg, last.track_deg) >= c.heading_deg
        ):
            return "heading"
        return None


@dataclass(frozen=True, slots=True)
class PathError:
    epochs: int
    reported: int
    reduction: float  # epochs / reported
    max_m: float
    mean_m: float
    p95_m: float


def path_error(trace: Sequence[Sample], reported_idx: Sequence[int]) -> PathError:
    """Cross-track distance from each epoch of ``trace`` to the polyline through the reported
    epochs (indices into ``trace``, increasing), on a local flat projection (errors of a few
    metres over segments of at most a few km: the projection's own error is negligible)."""
    if not trace or not reported_idx:
        raise ValueError("need a trace and at least one reported epoch")
    lat0 = math.radians(trace[0].lat)
    kx = math.radians(1) * EARTH_RADIUS_M * math.cos(lat0)
    ky = math.radians(1) * EARTH_RADIUS_M
    xy = [(s.lon * kx, s.lat * ky) for s in trace]
    idx = list(reported_idx)
    errs: list[float] = [0.0] * len(idx)  # a reported epoch lies on the polyline
    for a, b in itertools.pairwise(idx):
        ax, ay = xy[a]
        bx, by = xy[b]
        for i in range(a + 1, b):
            errs.append(_seg_dist(xy[i][0], xy[i][1], ax, ay, bx, by))
    # epochs before the first / after the last report: distance to that report
    for i in (*range(0, idx[0]), *range(idx[-1] + 1, len(trace))):
        r = idx[0] if i < idx[0] else idx[-1]
        errs.append(math.dist(xy[i], xy[r]))
    errs.sort()
    return PathError(
        epochs=len(trace),
        reported=len(idx),
        reduction=len(trace) / len(idx),
        max_m=errs[-1],
        mean_m=sum(errs) / len(errs),
        p95_m=errs[min(len(errs) - 1, int(0.95 * len(errs)))],
    )


def _seg_dist(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    n = dx * dx + dy * dy
    u = 0.0 if n == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / n))
    return math.hypot(px - ax - u * dx, py - ay - u * dy)


def evaluate(trace: Sequence[Sample], config: ReportingConfig | None = None) -> PathError:
    """Run a fresh policy over ``trace`` and measure its path error. The last epoch counts as
    reported, as the agent reports the position it stops at (ignition off, shutdown)."""
    policy = ReportingPolicy(config)
    idx = [i for i, s in enumerate(trace) if policy.offer(s)]
    if idx[-1] != len(trace) - 1:
        idx.append(len(trace) - 1)
    return path_error(trace, idx)
