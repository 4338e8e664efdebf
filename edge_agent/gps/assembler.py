"""Observations -> one GpsFix per receiver epoch.

An epoch is the set of sentences that share a time of day. It closes when a sentence with a
different time arrives, or earlier, once the receiver's cycle is learned: the sentence that
ended the last two epochs (the "cycle ender", as gpsd calls it) closes the current one at once,
saving a cycle of latency. A sentence for an epoch already closed that way is counted as late
and the cycle is learned again.

The date comes from RMC or ZDA and is carried across epochs (and across midnight); a stream
that never gives a date yields fixes with a time of day but no absolute time.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

from edge_agent.gps.counters import Counters
from edge_agent.gps.fix import GpsFix
from edge_agent.gps.observation import Observation

_T = TypeVar("_T")

DAY_MS = 86_400_000
GPS_WEEKS_ROLLOVER = timedelta(weeks=1024)
# Dates before this are taken as a GPS week rollover (a receiver counting 1024 weeks short).
DEFAULT_MIN_DATE = date(2000, 1, 1)


@dataclass(slots=True)
class _Epoch:
    tod_ms: int | None = None
    date: date | None = None
    obs: list[Observation] = field(default_factory=list)
    addresses: Counter[str] = field(default_factory=Counter)
    last_address: str = ""


class EpochAssembler:
    """Merge observations into fixes. `push()` returns the fixes an observation completes."""

    def __init__(
        self,
        counters: Counters | None = None,
        *,
        early_emit: bool = True,
        min_date: date = DEFAULT_MIN_DATE,
        reference_clock: Callable[[], float] | None = None,
    ) -> None:
        self.counters = counters if counters is not None else Counters()
        self.early_emit = early_emit
        self.min_date = min_date
        self.reference_clock = reference_clock
        self._cur: _Epoch | None = None
        self._emitted_tod: int | None = None
        self._ender: tuple[str, int] | None = None
        self._candidate: tuple[str, int] | None = None
        self._carried: date | None = None
        self._carried_tod: int = 0

    def push(self, obs: Observation) -> list[GpsFix]:
        out: list[GpsFix] = []
        cur = self._cur
        if obs.tod_ms is not None:
            if cur is not None and cur.tod_ms is not None and cur.tod_ms != obs.tod_ms:
                self._learn(cur)
                out.extend(self._close(cur))
                cur = None
            if (cur is None or cur.tod_ms is None) and obs.tod_ms == self._emitted_tod:
                self.counters.add("late_sentence", obs.address)
                self._ender = self._candidate = None
                self._note(obs.address, out)
                return out
            if cur is None:
                cur = _Epoch()
            cur.tod_ms = obs.tod_ms
        elif cur is None:
            cur = _Epoch()
        self._cur = cur
        cur.obs.append(obs)
        if obs.date is not None:
            cur.date = obs.date
        self._note(obs.address, out)
        return out

    def push_other(self, address: str) -> list[GpsFix]:
        """A valid sentence that carries nothing for a fix (GSV, proprietary): it still marks
        the receiver's cycle."""
        out: list[GpsFix] = []
        self._note(address, out)
        return out

    def flush(self) -> list[GpsFix]:
        """End of stream: close the open epoch."""
        cur, self._cur = self._cur, None
        return [] if cur is None or cur.tod_ms is None else self._close(cur)

    def _note(self, address: str, out: list[GpsFix]) -> None:
        cur = self._cur
        if cur is None:
            return
        cur.addresses[address] += 1
        cur.last_address = address
        ender = self._ender
        if (
            self.early_emit
            and ender is not None
            and cur.tod_ms is not None
            and address == ender[0]
            and cur.addresses[address] == ender[1]
        ):
            out.extend(self._close(cur))
            self._emitted_tod = cur.tod_ms
            self._cur = None

    def _learn(self, closed: _Epoch) -> None:
        """The epoch was closed by a time change: its last sentence is a candidate ender,
        trusted once two epochs in a row agree."""
        seen = (closed.last_address, closed.addresses[closed.last_address])
        if self._ender is not None:
            self.counters.add("cycle_relearned", closed.last_address)
            self._ender = None
        if seen == self._candidate:
            self._ender = seen
        self._candidate = seen

    def _close(self, epoch: _Epoch) -> list[GpsFix]:
        self.counters.add("epochs")
        fix = self._build(epoch)
        if fix is None:
            self.counters.add("epochs_without_fix")
            return []
        return [fix]

    def _epoch_date(self, epoch: _Epoch) -> date | None:
        tod = epoch.tod_ms or 0
        if epoch.date is not None:
            day = self._fix_rollover(epoch.date)
        elif self._carried is not None:
            day = self._carried
            if tod < self._carried_tod - DAY_MS // 2:  # passed midnight since the last date
                day += timedelta(days=1)
        else:
            return None
        self._carried, self._carried_tod = day, tod
        return day

    def _fix_rollover(self, day: date) -> date:
        floor = self.min_date
        if self.reference_clock is not None:
            reference = date.fromtimestamp(self.reference_clock())
            floor = max(floor, reference - GPS_WEEKS_ROLLOVER / 2)
        if day < floor:
            self.counters.add("week_rollover_corrected", day.isoformat())
            while day < floor:
                day += GPS_WEEKS_ROLLOVER
        return day

    def _build(self, epoch: _Epoch) -> GpsFix | None:
        day = self._epoch_date(epoch)
        assert epoch.tod_ms is not None
        best: Observation | None = None
        merged = _Merged()
        for obs in epoch.obs:
            merged.add(obs)
            if obs.valid and obs.lat is not None and (best is None or obs.digits >= best.digits):
                best = obs
        if best is None or best.lat is None or best.lon is None:
            return None
        mode = merged.mode()
        time_s = None
        if day is not None:
            time_s = calendar.timegm(day.timetuple()) + epoch.tod_ms / 1000.0
        else:
            self.counters.add("fix_without_date")
        return GpsFix(
            time_s=time_s,
            time_of_day_s=epoch.tod_ms / 1000.0,
            lat=best.lat,
            lon=best.lon,
            mode=mode,
            alt_m=merged.alt_m if mode == 3 else None,
            geoid_sep_m=merged.geoid_sep_m,
            speed_mps=merged.speed_mps,
            track_deg=merged.track_deg,
            quality=merged.quality,
            hdop=merged.hdop if merged.hdop is not None else merged.gsa_hdop,
            pdop=merged.pdop,
            vdop=merged.vdop,
            sats=merged.sats if merged.sats is not None else (len(merged.gsa_sats) or None),
            err_lat_m=merged.err_lat_m,
            err_lon_m=merged.err_lon_m,
            err_alt_m=merged.err_alt_m,
            talker=best.talker,
        )


@dataclass(slots=True)
class _Merged:
    """Last-wins merge of the optional values of an epoch's valid sentences."""

    alt_m: float | None = None
    geoid_sep_m: float | None = None
    speed_mps: float | None = None
    track_deg: float | None = None
    quality: int | None = None
    hdop: float | None = None
    gsa_hdop: float | None = None
    pdop: float | None = None
    vdop: float | None = None
    sats: int | None = None
    gsa_modes: list[int] = field(default_factory=list)
    gsa_sats: set[str] = field(default_factory=set)
    err_lat_m: float | None = None
    err_lon_m: float | None = None
    err_alt_m: float | None = None

    def add(self, obs: Observation) -> None:
        if obs.kind == "GSA":
            if obs.gsa_mode is not None:
                self.gsa_modes.append(obs.gsa_mode)
            self.gsa_sats.update(obs.gsa_sats)
            self.gsa_hdop = _pick(obs.hdop, self.gsa_hdop)
            self.pdop = _pick(obs.pdop, self.pdop)
            self.vdop = _pick(obs.vdop, self.vdop)
            return
        if obs.kind == "GST":
            self.err_lat_m = _pick(obs.err_lat_m, self.err_lat_m)
            self.err_lon_m = _pick(obs.err_lon_m, self.err_lon_m)
            self.err_alt_m = _pick(obs.err_alt_m, self.err_alt_m)
            return
        if obs.kind == "GGA":
            self.quality = obs.quality
        if obs.valid is False:
            return
        self.alt_m = _pick(obs.alt_m, self.alt_m)
        self.geoid_sep_m = _pick(obs.geoid_sep_m, self.geoid_sep_m)
        self.speed_mps = _pick(obs.speed_mps, self.speed_mps)
        self.track_deg = _pick(obs.track_deg, self.track_deg)
        self.hdop = _pick(obs.hdop, self.hdop)
        self.sats = _pick(obs.sats, self.sats)

    def mode(self) -> int:
        """2D or 3D: the receiver's GSA when it reports a fix, else 3D when it gave an
        altitude."""
        gsa = max(self.gsa_modes, default=0)
        if gsa >= 2:
            return gsa
        return 3 if self.alt_m is not None else 2


def _pick(new: _T | None, old: _T | None) -> _T | None:
    return old if new is None else new
