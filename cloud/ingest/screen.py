"""Screening a poll's worth of decoded telemetry: what is stored, what is quarantined and why.

Column-wise first: every fix of the poll is checked at once with numpy (null island, ranges,
future, too old), then each vehicle's fixes in arrival order against the previous one (time
strictly increasing, no impossible speed). A vehicle whose fixes are all clean is accepted in
bulk, with no per-fix Python work; only a vehicle with something wrong (a bad fix, a late or
repeated fix, a GPS jump) goes through the exact sequential rules below.

The sequential rules, per vehicle, with ``last`` the newest accepted fix (seeded from
``vehicle_latest`` after a restart, so a restart changes no verdict):

- a fix impossible on its own gets that reason (``validate.check_fix``);
- the same instant twice within the poll is a ``duplicate``;
- a fix newer than ``last`` is a jump when reaching it from ``last`` needs an impossible speed;
  otherwise it becomes ``last``;
- a LATE fix (not newer than ``last``) is judged against its time neighbours, the stored fix
  just before and just after it (from the database, through ``neighbours``) and the fixes of
  this poll already accepted: a jump only when it is impossible from every neighbour it has
  (a good fix next to one bad stored fix is kept). A late fix never moves ``last``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cloud.ingest import validate
from flota_wire.telemetry import TelemetryColumns

# Stands for NULL in the integer staging columns (no wire value reaches it).
NULL = -(2**62)
Arr = npt.NDArray[np.int64]
# (time_us, lat_e6, lon_e6) of one fix
Point = tuple[int, int, int]
# For one vehicle and sorted instants: the stored fix just before and just after each.
NeighbourLookup = Callable[[int, Sequence[int]], list[tuple[Point | None, Point | None]]]

FIELDS = (
    "time_us", "seq", "lat_e6", "lon_e6", "alt_dm", "speed_cmps", "track_cdeg", "hdop_c",
    "sats", "fix_mode",
)  # fmt: skip
_OPTIONAL = ("alt_dm", "speed_cmps", "track_cdeg", "hdop_c", "sats")
_R = validate.EARTH_RADIUS_M


@dataclass
class Rejected:
    """One fix refused by the screen."""

    vix: int
    seq: int
    time_us: int
    reason: str


@dataclass
class Screened:
    """Accepted fixes as int64 columns (``NULL`` for absent optional values) plus refusals."""

    vix: Arr
    cols: dict[str, Arr]
    rejected: list[Rejected] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.vix)


def _column(values: list[int | None]) -> list[int]:
    if None in values:
        return [NULL if v is None else v for v in values]
    return values  # type: ignore[return-value]  # no None in it


def gather(parts: Sequence[tuple[int, TelemetryColumns]]) -> tuple[Arr, dict[str, Arr]]:
    """Concatenate decoded batches (each with its vehicle index) into int64 columns."""
    vix: list[int] = []
    lists: dict[str, list[int]] = {name: [] for name in FIELDS}
    for v, cols in parts:
        vix.extend([v] * len(cols.seq))
        for name in FIELDS:
            values = getattr(cols, name)
            lists[name].extend(_column(values) if name in _OPTIONAL else values)
    return np.asarray(vix, dtype=np.int64), {
        name: np.asarray(values, dtype=np.int64) for name, values in lists.items()
    }


def _distance_m(lat1: Arr, lon1: Arr, lat2: Arr, lon2: Arr) -> npt.NDArray[np.float64]:
    p1, p2 = np.radians(lat1 / 1e6), np.radians(lat2 / 1e6)
    dp, dl = p2 - p1, np.radians((lon2 - lon1) / 1e6)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * _R * np.arcsin(np.minimum(1.0, np.sqrt(a)))  # type: ignore[no-any-return]


def _single_reasons(cols: dict[str, Arr], now_us: int, limits: validate.Limits) -> Arr:
    """Per fix: 0 when fine on its own, else a nonzero code (the exact reason is re-derived by
    the sequential path for the few that have one)."""
    lat, lon, t, speed = cols["lat_e6"], cols["lon_e6"], cols["time_us"], cols["speed_cmps"]
    bad = (lat == 0) & (lon == 0)
    bad |= (lat < -90_000_000) | (lat > 90_000_000) | (lon < -180_000_000) | (lon > 180_000_000)
    has_speed = speed != NULL
    bad |= has_speed & ((speed < 0) | (speed > limits.max_reported_speed_mps * 100))
    bad |= t > now_us + limits.future_tolerance_s * 1e6
    bad |= t < now_us - limits.max_age_s * 1e6
    out: Arr = bad.astype(np.int64)
    return out


class Screen:
    """Keeps each vehicle's newest accepted fix between polls; see the module doc."""

    def __init__(self, limits: validate.Limits) -> None:
        self.limits = limits
        self.last: dict[int, Point] = {}  # by vehicle index (the caller keeps indices stable)

    def screen(
        self,
        vix: Arr,
        cols: dict[str, Arr],
        *,
        now_us: int,
        neighbours: NeighbourLookup,
    ) -> Screened:
        n = len(vix)
        if n == 0:
            return Screened(vix, cols)
        order = np.argsort(vix, kind="stable")
        v = vix[order]
        t, lat, lon = cols["time_us"][order], cols["lat_e6"][order], cols["lon_e6"][order]
        bad = _single_reasons(cols, now_us, self.limits)[order]
        starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
        ends = np.r_[starts[1:], n]
        # The previous fix of each: the one before in the same vehicle, or the remembered last.
        pt, plat, plon = np.roll(t, 1), np.roll(lat, 1), np.roll(lon, 1)
        has_prev = np.ones(n, dtype=bool)
        for s in starts:
            prev = self.last.get(int(v[s]))
            if prev is None:
                has_prev[s] = False
                pt[s], plat[s], plon[s] = t[s] - 1, lat[s], lon[s]
            else:
                pt[s], plat[s], plon[s] = prev
        dt = (t - pt) / 1e6
        late = has_prev & (dt <= 0)
        dist = _distance_m(plat, plon, lat, lon)
        jump = has_prev & ~late & ((dist - validate.JUMP_SLACK_M) > self.limits.max_speed_mps * dt)
        dirty = (bad != 0) | late | jump
        dirty_groups = np.add.reduceat(dirty.astype(np.int64), starts) > 0

        keep = np.ones(n, dtype=bool)
        rejected: list[Rejected] = []
        for g in np.flatnonzero(dirty_groups):
            lo, hi = int(starts[g]), int(ends[g])
            ok = self._sequential(int(v[lo]), order[lo:hi], cols, now_us, neighbours, rejected)
            keep[lo:hi] = ok
        for g in np.flatnonzero(~dirty_groups):
            e = int(ends[g]) - 1
            self.last[int(v[e])] = (int(t[e]), int(lat[e]), int(lon[e]))
        sel = order[keep]
        sel.sort()  # arrival order: what the database sees
        return Screened(vix[sel], {k: a[sel] for k, a in cols.items()}, rejected)

    def _sequential(
        self,
        vehicle: int,
        idx: npt.NDArray[np.intp],
        cols: dict[str, Arr],
        now_us: int,
        neighbours: NeighbourLookup,
        rejected: list[Rejected],
    ) -> npt.NDArray[np.bool_]:
        lim = self.limits
        t_all = cols["time_us"][idx].tolist()
        lat_all = cols["lat_e6"][idx].tolist()
        lon_all = cols["lon_e6"][idx].tolist()
        speed_all = cols["speed_cmps"][idx].tolist()
        seq_all = cols["seq"][idx].tolist()
        last = before = self.last.get(vehicle)
        # Stored neighbours of every fix that is late against what was known before this poll.
        late_times = sorted({ti for ti in t_all if last is not None and ti <= last[0]})
        stored = dict(zip(late_times, neighbours(vehicle, late_times), strict=True))
        accepted: list[Point] = []  # this poll's accepted fixes of the vehicle, by time
        seen: set[int] = set()
        ok = np.zeros(len(idx), dtype=bool)
        for i in range(len(idx)):
            ti, la, lo = t_all[i], lat_all[i], lon_all[i]
            speed = speed_all[i]
            reason = validate.check_fix(
                la, lo, time_us=ti, speed_cmps=None if speed == NULL else speed,
                now_us=now_us, limits=lim,
            )  # fmt: skip
            if reason is None and ti in seen:
                reason = validate.DUPLICATE
            if reason is None:
                if last is None or ti > last[0]:
                    if last is not None and validate.is_jump(last, la, lo, ti, lim):
                        reason = validate.IMPOSSIBLE_SPEED
                    else:
                        last = (ti, la, lo)
                elif self._late_jump((ti, la, lo), stored.get(ti, (before, None)), accepted):
                    reason = validate.IMPOSSIBLE_SPEED
            if reason is not None:
                rejected.append(Rejected(vehicle, seq_all[i], ti, reason))
                continue
            ok[i] = True
            seen.add(ti)
            bisect.insort(accepted, (ti, la, lo))
        if last is not None:
            self.last[vehicle] = last
        return ok

    def _late_jump(
        self,
        fix: Point,
        stored: tuple[Point | None, Point | None],
        accepted: list[Point],
    ) -> bool:
        prev, nxt = stored
        k = bisect.bisect_left(accepted, (fix[0],))
        if k > 0 and (prev is None or accepted[k - 1][0] > prev[0]):
            prev = accepted[k - 1]
        j = bisect.bisect_right(accepted, (fix[0], 2**63))
        if j < len(accepted) and (nxt is None or accepted[j][0] < nxt[0]):
            nxt = accepted[j]
        known = [p for p in (prev, nxt) if p is not None]
        # A jump is impossible from every neighbour; a fix that one good neighbour explains is
        # kept, even when the other neighbour is itself wrong.
        return bool(known) and all(
            validate.is_jump(p, fix[1], fix[2], fix[0], self.limits) for p in known
        )
