"""The rules, as a deterministic state machine per vehicle: (state, input) -> (state, events).

No clock, no I/O: the same inputs from the same state give the same events with the same keys,
which is what makes a replay after a crash harmless. See docs/geo.md for the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloud.ingest.geo import events as ev
from cloud.ingest.geo.config import GeoRules
from cloud.ingest.geo.events import DomainEvent
from cloud.ingest.geo.fences import FenceIndex
from cloud.ingest.geo.geometry import haversine_m
from cloud.ingest.geo.state import FenceVisit, Point, Trip, VehicleState
from cloud.ingest.streams import vehicle_event_detail
from flota_wire.schema import Event

IGNITION_ON = "ignition_on"
IGNITION_OFF = "ignition_off"


@dataclass(frozen=True, slots=True)
class FixIn:
    """One position fix as the rules see it."""

    time_us: int
    lat: float
    lon: float
    speed_mps: float | None = None  # as reported by the receiver; None: derived


class Outcome(StrEnum):
    USED = "used"
    LATE = "late"  # not newer than the watermark: ignored, fires nothing
    JUMP = "jump"  # implied speed impossible: ignored, adds no distance


def _s(us: int) -> float:
    return us / 1e6


def _pos(p: Point) -> dict[str, Any]:
    return {"lat": p.lat, "lon": p.lon}


class Tracker:
    """Applies the rules to one vehicle's state; events go to ``out``."""

    def __init__(
        self,
        tenant: str,
        vehicle: str,
        state: VehicleState,
        rules: GeoRules,
        fences: FenceIndex | None,
        out: list[DomainEvent],
    ) -> None:
        self.tenant, self.vehicle, self.state = tenant, vehicle, state
        self.rules, self.fences, self.out = rules, fences, out

    def _emit(self, kind: str, time_us: int, key: str, **detail: Any) -> None:
        self.out.append(DomainEvent(self.tenant, self.vehicle, time_us, kind, key, detail))

    # --- fixes ------------------------------------------------------------------------------
    def on_fix(self, fix: FixIn) -> Outcome:
        st = self.state
        if fix.time_us <= st.watermark_us:
            st.late_fixes += 1
            return Outcome.LATE
        st.watermark_us = fix.time_us
        here = Point(fix.time_us, fix.lat, fix.lon)
        derived = self._odometer(here)
        if derived is None:
            st.jumps += 1
            return Outcome.JUMP
        speed = fix.speed_mps if fix.speed_mps is not None else derived
        st.last = here
        if st.trip is not None and not st.trip.located:
            st.trip.start = Point(st.trip.start.time_us, here.lat, here.lon)
            st.trip.located = True
        self._motion(here, speed)
        self._speeding(here, speed)
        self._geofences(here)
        return Outcome.USED

    def _odometer(self, here: Point) -> float | None:
        """Add the distance from the anchor unless it is a jump; return the implied speed
        (m/s), or None for a jump."""
        st, r = self.state, self.rules
        if st.anchor is None:
            st.anchor = here
            return 0.0
        dist = haversine_m(st.anchor.lat, st.anchor.lon, here.lat, here.lon)
        dt = _s(here.time_us - st.anchor.time_us)
        if (dist - r.jump_slack_m) / dt > r.max_speed_mps:
            # Consecutive jump fixes that agree with each other: the vehicle really is there
            # (a reacquisition after a tunnel, a ferry). Re-anchor without adding distance.
            last = st.jump_last
            consistent = (
                last is not None
                and (haversine_m(last.lat, last.lon, here.lat, here.lon) - r.jump_slack_m)
                / _s(here.time_us - last.time_us)
                <= r.max_speed_mps
            )
            st.jump_run = st.jump_run + 1 if consistent else 1
            st.jump_last = here
            if st.jump_run < r.jump_reanchor_fixes:
                return None
            st.anchor, st.jump_run, st.jump_last = here, 0, None
            return 0.0
        st.odometer_m += dist
        st.anchor, st.jump_run, st.jump_last = here, 0, None
        return dist / dt

    def _motion(self, here: Point, speed: float) -> None:
        st, r = self.state, self.rules
        if speed >= r.moving_speed_mps and not st.moving:
            self._standing_ends(here)
            st.moving, st.moving_since, st.moving_odometer_m = True, here, st.odometer_m
        elif (st.moving and speed < r.still_speed_mps) or (
            not st.moving and st.still_since is None
        ):
            st.moving, st.moving_since = False, None
            st.still_since, st.still_odometer_m, st.stop_open = here, st.odometer_m, False
        if (
            st.moving
            and st.moving_since is not None
            and st.trip is None
            and st.ignition is not False
            and _s(here.time_us - st.moving_since.time_us) >= r.trip_start_motion_s
        ):
            self._trip_start(st.moving_since, st.moving_odometer_m, "motion")
        if not st.moving and st.still_since is not None:
            standing = _s(here.time_us - st.still_since.time_us)
            if not st.stop_open and standing >= r.stop_min_s:
                st.stop_open = True
                s = st.still_since
                self._emit(ev.STOP_START, s.time_us, f"stop:{s.time_us}", **_pos(s))
            trip = st.trip
            if trip is not None and trip.started_by == "motion" and standing >= r.trip_end_stop_s:
                self._trip_end(st.still_since, st.still_odometer_m, "stop")

    def _standing_ends(self, now: Point) -> None:
        """Motion resumed (or ignition went off): close the stop and the idling episode."""
        st = self.state
        s = st.still_since
        if s is None:
            return
        if st.stop_open:
            self._emit(
                ev.STOP_END,
                now.time_us,
                f"stop:{s.time_us}",
                **_pos(s),
                start_us=s.time_us,
                duration_s=_s(now.time_us - s.time_us),
            )
        self._idling_ends(now.time_us)
        st.still_since, st.stop_open = None, False

    def _idling_ends(self, end_us: int) -> None:
        st = self.state
        if st.ignition is not True or st.still_since is None or st.moving:
            return
        start_us = max(st.still_since.time_us, st.ignition_us)
        duration = _s(end_us - start_us)
        if duration >= self.rules.idle_min_s:
            self._emit(
                ev.IDLING,
                start_us,
                f"idling:{start_us}",
                **_pos(st.still_since),
                end_us=end_us,
                duration_s=duration,
            )

    def _trip_start(self, at: Point, odometer_m: float, by: str, located: bool = True) -> None:
        self.state.trip = Trip(at, odometer_m, by, located)
        where = _pos(at) if located else {"lat": None, "lon": None}
        self._emit(ev.TRIP_START, at.time_us, f"trip:{at.time_us}", **where, started_by=by)

    def _trip_end(self, at: Point | None, odometer_m: float, by: str, end_us: int = 0) -> None:
        trip = self.state.trip
        if trip is None:
            return
        self.state.trip = None
        s = trip.start
        end_us = max(at.time_us if at is not None else end_us, s.time_us)
        self._emit(
            ev.TRIP_END,
            end_us,
            f"trip:{s.time_us}",
            start_us=s.time_us,
            start_lat=s.lat if trip.located else None,
            start_lon=s.lon if trip.located else None,
            end_lat=None if at is None else at.lat,
            end_lon=None if at is None else at.lon,
            duration_s=_s(end_us - s.time_us),
            distance_m=round(max(0.0, odometer_m - trip.odometer_m), 1),
            ended_by=by,
        )

    def _speeding(self, here: Point, speed: float) -> None:
        st, r = self.state, self.rules
        if speed > r.speed_limit_mps:
            if st.speeding_start_us is None:
                st.speeding_start_us, st.speeding_max_mps = here.time_us, speed
            else:
                st.speeding_max_mps = max(st.speeding_max_mps, speed)
            return
        start = st.speeding_start_us
        if start is None:
            return
        st.speeding_start_us = None
        duration = _s(here.time_us - start)
        if duration >= r.speeding_min_s:
            self._emit(
                ev.SPEEDING,
                start,
                f"speeding:{start}",
                end_us=here.time_us,
                duration_s=duration,
                max_speed_mps=st.speeding_max_mps,
                limit_mps=r.speed_limit_mps,
            )

    def _geofences(self, here: Point) -> None:
        st, r, index = self.state, self.rules, self.fences
        if index is None:
            return
        inside = index.containing(self.tenant, here.lat, here.lon)
        for fid in sorted(inside | st.fences.keys()):
            fence = index.get(self.tenant, fid)
            if fence is None:  # deleted: forget the visit silently
                st.fences.pop(fid, None)
                continue
            visit = st.fences.setdefault(fid, FenceVisit())
            if (fid in inside) == visit.inside:
                visit.pending, visit.pending_at = 0, None
            else:
                if visit.pending == 0:
                    visit.pending_at = here
                visit.pending += 1
                at = visit.pending_at
                if at is not None and visit.pending >= r.geofence_confirm_fixes:
                    if visit.inside:
                        self._emit(
                            ev.GEOFENCE_EXIT,
                            at.time_us,
                            f"{fid}:{visit.enter_us}",
                            geofence=fid,
                            name=fence.name,
                            **_pos(at),
                            enter_us=visit.enter_us,
                            dwell_s=_s(at.time_us - visit.enter_us),
                        )
                        del st.fences[fid]
                        continue
                    visit.inside, visit.enter_us, visit.dwell_fired = True, at.time_us, False
                    visit.pending, visit.pending_at = 0, None
                    self._emit(
                        ev.GEOFENCE_ENTER,
                        at.time_us,
                        f"{fid}:{at.time_us}",
                        geofence=fid,
                        name=fence.name,
                        **_pos(at),
                    )
            if not visit.inside:
                if visit.pending == 0:
                    del st.fences[fid]
                continue
            dwell_s = fence.dwell_s if fence.dwell_s is not None else r.geofence_dwell_s
            if not visit.dwell_fired and _s(here.time_us - visit.enter_us) >= dwell_s:
                visit.dwell_fired = True
                self._emit(
                    ev.GEOFENCE_DWELL,
                    here.time_us,
                    f"{fid}:{visit.enter_us}",
                    geofence=fid,
                    name=fence.name,
                    enter_us=visit.enter_us,
                    dwell_s=_s(here.time_us - visit.enter_us),
                )

    # --- the vehicle's own events -----------------------------------------------------------
    def on_vehicle_event(self, event: Event) -> None:
        """Republish the vehicle's event as a domain event (the same row the store writes);
        ignition drives trips and idling."""
        detail = vehicle_event_detail(event)
        self.out.append(
            DomainEvent(
                self.tenant,
                self.vehicle,
                event.time_us,
                event.kind,
                str(event.seq),
                detail,
                source="vehicle",
                seq=event.seq,
            )
        )
        if event.kind not in (IGNITION_ON, IGNITION_OFF):
            return
        st = self.state
        if event.time_us < st.ignition_us:
            return  # an older ignition change than one already applied
        at: Point | None = None  # where: the event's own position, else the last fix's
        if event.lat_e6 is not None and event.lon_e6 is not None:
            at = Point(event.time_us, event.lat_e6 / 1e6, event.lon_e6 / 1e6)
        elif st.last is not None:
            at = Point(event.time_us, st.last.lat, st.last.lon)
        if event.kind == IGNITION_ON:
            if st.ignition is not True:
                st.ignition, st.ignition_us = True, event.time_us
            if st.trip is None:
                where = at or Point(event.time_us, 0.0, 0.0)
                self._trip_start(where, st.odometer_m, "ignition", located=at is not None)
        else:
            self._idling_ends(event.time_us)
            st.ignition, st.ignition_us = False, event.time_us
            self._trip_end(at, st.odometer_m, "ignition", end_us=event.time_us)
