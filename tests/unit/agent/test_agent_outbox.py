"""The outbox: accepted means committed, deleted only by exact acks, caps drop the oldest
positions with an exact count, events never, seqs never reused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent.outbox import FIX_ROW_BYTES, Outbox, OutboxLimits
from flota_wire import Fix


def _fixes(n: int, t0: int = 1_795_780_800_000_000) -> list[Fix]:
    return [
        Fix(0, t0 + i * 1_000_000, 60_169_900 + i, 24_938_400 + i, 3, 250, 1000 + i)
        for i in range(n)
    ]


def test_seqs_grow_and_rows_read_back_exactly(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    fixes = _fixes(5)
    assert box.add_fixes(fixes) == [1, 2, 3, 4, 5]
    assert box.add_fixes(_fixes(2)) == [6, 7]
    got = box.fixes_after(0, 100)
    assert [f.seq for f in got] == [1, 2, 3, 4, 5, 6, 7]
    assert got[2] == Fix(3, *[getattr(fixes[2], k) for k in Fix.__slots__[1:]])
    assert [f.seq for f in box.fixes_after(5, 100)] == [6, 7]


def test_wal_and_synchronous_full(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.add_fixes(_fixes(1))
    db = sqlite3.connect(tmp_path / "o.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_ack_deletes_exact_ranges_only(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.add_fixes(_fixes(20))
    assert box.ack("telemetry", [(3, 5), (10, 10), (18, 40)]) == 3 + 1 + 3
    assert box.queued_seqs() == [1, 2, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17]
    assert box.ack("telemetry", [(3, 5)]) == 0  # a repeated ack is harmless
    assert box.fix_rows == 13
    assert box.any_in_range("telemetry", 6, 9)
    assert not box.any_in_range("telemetry", 18, 20)


def test_seq_never_reused_across_reopen_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.add_fixes(_fixes(10))
    box.ack("telemetry", [(1, 10)])  # everything gone
    ev = box.add_message("events", lambda seq: f"event {seq}".encode())
    box.close()
    box = Outbox(path)
    assert box.fix_rows == 0
    assert box.add_fixes(_fixes(1)) == [11]
    assert box.add_message("events", lambda seq: b"x") == ev + 1
    assert box.reserve("sensors", 5) == 1
    box.close()
    assert Outbox(path).reserve("sensors", 1) == 6


def test_row_cap_drops_oldest_positions_exactly_never_events(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", OutboxLimits(max_rows=10, max_bytes=10**9))
    e1 = box.add_message("events", lambda seq: b"e1")
    box.add_fixes(_fixes(6))  # rows: 1 event + 6 fixes
    e2 = box.add_message("events", lambda seq: b"e2")
    box.add_fixes(_fixes(7))  # 2 events + 13 fixes > 10: drop 5 oldest fixes
    assert box.dropped == 5
    assert box.queued_seqs() == list(range(6, 14))
    assert box.queued_seqs("events") == [e1, e2]
    for _ in range(12):  # events alone past the cap: every fix goes, no event does
        box.add_message("events", lambda seq: b"e")
    assert box.fix_rows == 0
    assert box.dropped == 13
    assert len(box.queued_seqs("events")) == 14
    box.close()
    assert Outbox(tmp_path / "o.sqlite").dropped == 13  # persisted


def test_byte_cap(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", OutboxLimits(max_rows=10**6, max_bytes=FIX_ROW_BYTES * 100))
    box.add_fixes(_fixes(150))
    assert box.dropped == 50
    assert box.queued_seqs()[0] == 51
    assert box.bytes_used <= FIX_ROW_BYTES * 100


def test_messages_and_acks(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    seqs = [box.add_message("acks", lambda s: b"ack%d" % s) for _ in range(3)]
    assert [m.payload for m in box.messages_after("acks", 0, 10)] == [b"ack1", b"ack2", b"ack3"]
    assert box.ack("acks", [(seqs[1], seqs[1])]) == 1
    assert [m.seq for m in box.messages_after("acks", 0, 10)] == [1, 3]
    with pytest.raises(ValueError, match="unknown outbox stream"):
        box.add_message("telemetry", lambda s: b"")
    stats = box.stats()
    assert stats["message_rows"] == 2
    assert stats["acked:acks"] == 1


def test_failed_build_rolls_back(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")

    def boom(seq: int) -> bytes:
        raise RuntimeError("encoder bug")

    with pytest.raises(RuntimeError):
        box.add_message("events", boom)
    assert box.add_message("events", lambda s: b"ok") == 1  # the seq was not consumed
    assert box.integrity_ok()


def test_hundred_thousand_rows_in_batches(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    for i in range(100):
        box.add_fixes(_fixes(1000, t0=1_795_780_800_000_000 + i * 10**9))
    assert box.fix_rows == 100_000
    assert len(box.fixes_after(99_990, 100)) == 10
    box.close()
    assert Outbox(tmp_path / "o.sqlite").fix_rows == 100_000


def test_first_seq_applies_once_at_creation(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", first_seq=5_000_000)
    assert box.add_fixes(_fixes(2)) == [5_000_000, 5_000_001]
    assert box.add_message("events", lambda s: b"e") == 5_000_000
    box.close()
    box = Outbox(tmp_path / "o.sqlite", first_seq=9_000_000)  # ignored: the file exists
    assert box.add_fixes(_fixes(1)) == [5_000_002]


def test_restarted_pipeline_skips_instants_already_accepted(tmp_path: Path) -> None:
    from edge_agent.gps.fix import GpsFix
    from edge_agent.pipeline import FixPipeline
    from edge_agent.reporting import ReportingConfig

    cfg = ReportingConfig(max_interval_s=1, min_interval_s=1, stopped_interval_s=1)
    t0 = 1_795_780_800.0

    def fix(t: float) -> GpsFix:
        return GpsFix(t, t % 86400, 60.17, 24.94, 3, speed_mps=10.0, track_deg=0.0)

    box = Outbox(tmp_path / "o.sqlite")
    pipe = FixPipeline(box, cfg)
    assert pipe.offer(fix(t0))
    assert pipe.offer(fix(t0 + 1))
    assert pipe.flush() == [1, 2]
    box.close()
    box = Outbox(tmp_path / "o.sqlite")
    assert box.last_fix_time_us == round((t0 + 1) * 1e6)
    pipe = FixPipeline(box, cfg)  # a restart: the receiver's buffer is read again
    assert not pipe.offer(fix(t0 + 1))
    assert not pipe.offer(fix(t0))
    assert pipe.offer(fix(t0 + 2))
    assert pipe.counters["epoch_not_after_last_accepted"] == 2
