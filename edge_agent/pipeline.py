"""The fix path of the agent: GpsFix -> reporting policy -> outbox rows, one transaction per
``flush``. Kept apart from the agent's wiring so it imports little (the fault test runs it in a
process that is killed hundreds of times)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from edge_agent.gps.fix import GpsFix
from edge_agent.outbox import Outbox
from edge_agent.reporting import ReportingConfig, ReportingPolicy, Sample
from flota_wire import Fix

REPLAY_WINDOW_S = 300.0
"""Epochs up to this much older than the newest accepted fix are taken as replays and skipped;
older ones (a receiver whose clock stepped back) are offered to the policy as usual."""


def to_wire_fix(fix: GpsFix, time_s: float) -> Fix:
    """The outbox row of an epoch (seq 0: the outbox assigns the real one)."""
    return Fix.from_si(
        seq=0,
        time_s=time_s,
        lat=fix.lat,
        lon=fix.lon,
        fix_mode=3 if fix.mode == 3 else 2,
        alt_m=fix.alt_m,
        speed_mps=fix.speed_mps,
        track_deg=fix.track_deg,
        hdop=fix.hdop,
        sats=fix.sats,
    )


class FixPipeline:
    """GpsFix -> policy -> pending rows -> one outbox transaction per ``flush``.

    ``on_commit(seqs, fixes)`` runs after each commit (the fault test logs there what the
    outbox accepted)."""

    def __init__(
        self,
        outbox: Outbox,
        config: ReportingConfig,
        on_commit: Callable[[list[int], list[Fix]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.policy = ReportingPolicy(config)
        self.on_commit = on_commit
        self.clock = clock
        self.pending: list[Fix] = []
        self.counters: Counter[str] = Counter()
        self.last: GpsFix | None = None
        self.last_time_s: float | None = None

    def offer(self, fix: GpsFix) -> bool:
        self.counters["epochs"] += 1
        t = fix.time_s
        if t is None:  # a GGA-only receiver never says the date: stamp with our clock
            t = self.clock()
            self.counters["stamped_with_system_clock"] += 1
        self.last, self.last_time_s = fix, t
        newest_s = self.outbox.last_fix_time_us / 1e6
        if newest_s - REPLAY_WINDOW_S < t <= newest_s:
            # The same or an earlier instant than a fix already accepted (a receiver's buffer
            # read again after a restart): the cloud keeps one fix per instant anyway.
            self.counters["epoch_not_after_last_accepted"] += 1
            return False
        if not self.policy.offer(Sample(t, fix.lat, fix.lon, fix.speed_mps, fix.track_deg)):
            return False
        self.pending.append(to_wire_fix(fix, t))
        return True

    def flush(self) -> list[int]:
        if not self.pending:
            return []
        fixes, self.pending = self.pending, []
        seqs = self.outbox.add_fixes(fixes)
        self.counters["accepted"] += len(seqs)
        if self.on_commit is not None:
            self.on_commit(seqs, fixes)
        return seqs
