"""The agent's outbox under SIGKILL: a child process runs the agent's fix path (reporting policy
-> outbox, one transaction per 10 Hz epoch) plus events and end-to-end acks, and is killed at
random points again and again. After every kill: the outbox passes PRAGMA integrity_check, and
every fix and event the child had committed is still queued or was acknowledged.

The child writes a side log, fsynced: ``c first last`` AFTER each fix commit, ``e seq`` after
each event commit, and ``a first last`` BEFORE each ack (so a kill between the two only makes
the check more lenient for rows that really were acknowledged, never for others).

FLOTA_FAULT_KILLS sets the number of kills (default 40, about a minute; the brief's figure is
200: ``FLOTA_FAULT_KILLS=200 pytest -m fault tests/faults/test_agent_sigkill.py``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

KILLS = int(os.environ.get("FLOTA_FAULT_KILLS", "40"))
REPO = Path(__file__).resolve().parents[2]


def _log(f: object, line: str) -> None:
    fd = f.fileno()  # type: ignore[attr-defined]
    os.write(fd, line.encode())
    os.fsync(fd)


def child(state: Path, log_path: Path) -> None:
    """Runs until killed."""
    from edge_agent.gps.fix import GpsFix
    from edge_agent.outbox import Outbox, OutboxLimits
    from edge_agent.pipeline import FixPipeline
    from edge_agent.reporting import ReportingConfig
    from flota_wire import Event, encode

    rng = random.Random(os.getpid())
    box = Outbox(state / "outbox.sqlite", OutboxLimits(max_rows=10**6, max_bytes=10**9))
    log = log_path.open("ab")
    cfg = ReportingConfig(max_interval_s=0.1, stopped_interval_s=0.1, min_interval_s=0.05)
    pipe = FixPipeline(box, cfg, on_commit=lambda seqs, _f: _log(log, f"c {seqs[0]} {seqs[-1]}\n"))
    _log(log, "ready\n")
    tick = 0
    while True:
        t = time.time()
        lat = 60.17 + (t % 3600) * 1e-5
        pipe.offer(GpsFix(t, t % 86400, lat, 24.94, 3, 20.0, None, 12.0, 90.0, 1, 0.9))
        pipe.flush()
        tick += 1
        if tick % 10 == 0:
            when = int(t * 1e6)

            def event(s: int, when: int = when) -> bytes:
                return encode(Event(s, when, "harsh_brake"))

            seq = box.add_message("events", event)
            _log(log, f"e {seq}\n")
        if tick % 5 == 0:
            queued = box.fixes_after(0, rng.randint(1, 8))
            if queued:
                first, last = queued[0].seq, queued[-1].seq
                _log(log, f"a {first} {last}\n")
                box.ack("telemetry", [(first, last)])
        time.sleep(0.1)


def _parse(log_path: Path) -> tuple[list[tuple[int, int]], set[int], set[int]]:
    committed: list[tuple[int, int]] = []
    events: set[int] = set()
    acked: set[int] = set()
    data = log_path.read_bytes()
    for line in data.decode(errors="replace").split("\n")[:-1]:  # the last may be torn
        parts = line.split()
        if parts[:1] == ["c"] and len(parts) == 3:
            committed.append((int(parts[1]), int(parts[2])))
        elif parts[:1] == ["e"] and len(parts) == 2:
            events.add(int(parts[1]))
        elif parts[:1] == ["a"] and len(parts) == 3:
            acked.update(range(int(parts[1]), int(parts[2]) + 1))
    return committed, events, acked


@pytest.mark.fault
def test_sigkill_loses_no_accepted_fix_and_corrupts_no_outbox(tmp_path: Path) -> None:
    from edge_agent.outbox import Outbox

    state = tmp_path / "state"
    state.mkdir()
    log_path = tmp_path / "side.log"
    log_path.touch()
    rng = random.Random(20261128)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    deadline = time.monotonic() + 600
    for i in range(KILLS):
        assert time.monotonic() < deadline, f"too slow: {i} kills in 600 s"
        ready_before = log_path.read_bytes().count(b"ready\n")
        proc = subprocess.Popen(
            [sys.executable, __file__, "child", str(state), str(log_path)], env=env
        )
        # Kill at a random point: sometimes during start-up and opening, mostly while writing.
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            while log_path.read_bytes().count(b"ready\n") == ready_before:
                assert proc.poll() is None, f"child died by itself: {proc.returncode}"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        box = Outbox(state / "outbox.sqlite")
        try:
            assert box.integrity_ok(), f"corrupt outbox after kill {i}"
            queued = set(box.queued_seqs())
            queued_events = set(box.queued_seqs("events"))
        finally:
            box.close()
        committed, events, acked = _parse(log_path)
        seqs = [s for a, b in committed for s in range(a, b + 1)]
        assert len(seqs) == len(set(seqs)), f"a seq was handed out twice (kill {i})"
        lost = {s for s in seqs if s not in queued and s not in acked}
        assert not lost, f"kill {i}: accepted fixes lost: {sorted(lost)[:10]}"
        assert events <= queued_events, f"kill {i}: events lost: {sorted(events - queued_events)}"
    committed, events, _ = _parse(log_path)
    assert sum(b - a + 1 for a, b in committed) > KILLS  # it really wrote between the kills
    print(f"{KILLS} kills, {sum(b - a + 1 for a, b in committed)} fixes, {len(events)} events")


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(Path(sys.argv[2]), Path(sys.argv[3]))
