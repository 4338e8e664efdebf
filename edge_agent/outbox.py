"""The agent's store-and-forward queue: SQLite in WAL mode with synchronous=FULL.

A fix or a message is *accepted* once its transaction has committed; from then on it survives a
power cut or a SIGKILL. Every row gets a per-vehicle, per-stream seq that only grows: the next
seq of each stream is kept in the ``counters`` table and raised in the same transaction as the
insert, so it is never reused, even after the rows are deleted or the file is reopened.

A row leaves only when the cloud acknowledges it (``ack``: exact inclusive seq ranges, from a
``StoredAck``; a broker PUBACK is not delivery). The queue is bounded in rows and bytes; when a
cap is passed the *oldest positions* are deleted and counted exactly (the drop counter is
persisted in the same transaction); messages (events, command acks) are never dropped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flota_wire import Fix

log = logging.getLogger(__name__)

FIX_ROW_BYTES = 48
"""What one queued fix counts against the byte cap (about its size in the SQLite b-tree)."""
MESSAGE_OVERHEAD_BYTES = 24
"""What one queued message counts on top of its payload."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fixes (
    seq INTEGER PRIMARY KEY,
    time_us INTEGER NOT NULL,
    lat_e6 INTEGER NOT NULL,
    lon_e6 INTEGER NOT NULL,
    fix_mode INTEGER NOT NULL,
    alt_dm INTEGER,
    speed_cmps INTEGER,
    track_cdeg INTEGER,
    hdop_c INTEGER,
    sats INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
"""

TELEMETRY = "telemetry"
MESSAGE_STREAMS = ("events", "acks", "sensors")


class OutboxError(Exception):
    """The outbox file cannot be used (corrupt, unwritable); not retriable without a person."""

    retriable = False


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Caps of the queue. Only positions are ever dropped to respect them."""

    max_rows: int = 500_000
    max_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_bytes < FIX_ROW_BYTES:
            raise ValueError("outbox caps must allow at least one row")


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    stream: str
    seq: int
    payload: bytes


class Outbox:
    """Thread-safe (one connection behind a lock): the GPS path inserts, the MQTT thread acks."""

    def __init__(
        self, path: Path | str, limits: OutboxLimits | None = None, first_seq: int = 1
    ) -> None:
        """``first_seq`` is used only when the file is created (see ``seq_base``)."""
        self.path = Path(path)
        self.limits = limits or OutboxLimits()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"{self.path}: journal_mode is {mode}, not wal")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA cache_size=-1024")  # 1 MiB: the queue lives on disk
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES ('seq_base', ?) "
                "ON CONFLICT (name) DO NOTHING",
                (max(1, int(first_seq)),),
            )
            self._seq_base = self._counter("seq_base")
            self._last_time_us = self._counter("last_time_us:telemetry")
            self._fix_rows = self._scalar("SELECT count(*) FROM fixes")
            self._msg_rows = self._scalar("SELECT count(*) FROM messages")
            self._msg_bytes = (
                self._scalar("SELECT coalesce(sum(length(payload)), 0) FROM messages")
                + MESSAGE_OVERHEAD_BYTES * self._msg_rows
            )
        except sqlite3.Error as err:
            raise OutboxError(f"cannot open outbox {self.path}: {err}") from err

    # -- helpers -------------------------------------------------------------------------
    def _scalar(self, sql: str, args: Sequence[object] = ()) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _counter(self, name: str) -> int:
        return self._scalar("SELECT value FROM counters WHERE name = ?", (name,))

    def _set_counter(self, name: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _take_seqs(self, stream: str, n: int) -> int:
        """Reserve n seqs of ``stream`` (inside the caller's transaction); return the first."""
        first = max(self._counter(f"next_seq:{stream}"), self._seq_base)
        self._set_counter(f"next_seq:{stream}", first + n)
        return first

    @property
    def bytes_used(self) -> int:
        return self._fix_rows * FIX_ROW_BYTES + self._msg_bytes

    @property
    def last_fix_time_us(self) -> int:
        """Time of the newest fix ever accepted (0 if none): persisted, so a restarted agent
        does not accept the same instant again from a receiver's buffered sentences."""
        return self._last_time_us

    @property
    def rows(self) -> int:
        return self._fix_rows + self._msg_rows

    @property
    def fix_rows(self) -> int:
        return self._fix_rows

    @property
    def message_rows(self) -> int:
        return self._msg_rows

    # -- accept --------------------------------------------------------------------------
    def add_fixes(self, fixes: Sequence[Fix]) -> list[int]:
        """Accept fixes in one transaction; return the seqs they got (their own seq is
        ignored). Returns only after the commit: from then on they are durable."""
        if not fixes:
            return []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                first = self._take_seqs(TELEMETRY, len(fixes))
                seqs = list(range(first, first + len(fixes)))
                self._db.executemany(
                    "INSERT INTO fixes VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            s,
                            f.time_us,
                            f.lat_e6,
                            f.lon_e6,
                            f.fix_mode,
                            f.alt_dm,
                            f.speed_cmps,
                            f.track_cdeg,
                            f.hdop_c,
                            f.sats,
                        )
                        for s, f in zip(seqs, fixes, strict=True)
                    ],
                )
                newest = max(f.time_us for f in fixes)
                if newest > self._last_time_us:
                    self._set_counter("last_time_us:telemetry", newest)
                dropped = self._enforce_caps(len(fixes), 0)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._fix_rows += len(fixes) - dropped
            self._last_time_us = max(self._last_time_us, newest)
        if dropped:
            log.warning("outbox over its cap: dropped the %d oldest positions", dropped)
        return seqs

    def add_message(self, stream: str, build: Callable[[int], bytes]) -> int:
        """Accept one message of ``stream``; ``build(seq)`` returns its payload (so the seq the
        outbox assigns can be inside it). Messages are never dropped by the caps."""
        if stream not in MESSAGE_STREAMS:
            raise ValueError(f"unknown outbox stream {stream!r}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._take_seqs(stream, 1)
                payload = build(seq)
                self._db.execute("INSERT INTO messages VALUES (?, ?, ?)", (stream, seq, payload))
                size = len(payload) + MESSAGE_OVERHEAD_BYTES
                dropped = self._enforce_caps(0, size)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._msg_rows += 1
            self._msg_bytes += size
            self._fix_rows -= dropped
        return seq

    def _enforce_caps(self, new_fixes: int, new_bytes: int) -> int:
        """Delete the oldest positions until both caps hold (inside the transaction)."""
        rows = self._fix_rows + new_fixes + self._msg_rows + (1 if new_bytes else 0)
        used = (self._fix_rows + new_fixes) * FIX_ROW_BYTES + self._msg_bytes + new_bytes
        over_rows = rows - self.limits.max_rows
        over_bytes = -(-(used - self.limits.max_bytes) // FIX_ROW_BYTES)
        excess = min(max(over_rows, over_bytes, 0), self._fix_rows + new_fixes)
        if excess <= 0:
            return 0
        deleted = self._db.execute(
            "DELETE FROM fixes WHERE seq IN (SELECT seq FROM fixes ORDER BY seq LIMIT ?)",
            (excess,),
        ).rowcount
        self._set_counter("dropped:telemetry", self._counter("dropped:telemetry") + deleted)
        return int(deleted)

    # -- acknowledge ---------------------------------------------------------------------
    def ack(self, stream: str, ranges: Iterable[tuple[int, int]]) -> int:
        """Forget the rows of ``stream`` inside these inclusive seq ranges; return how many."""
        pairs = [(int(a), int(b)) for a, b in ranges]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                deleted = 0
                freed = 0
                for first, last in pairs:
                    if stream == TELEMETRY:
                        cur = self._db.execute(
                            "DELETE FROM fixes WHERE seq BETWEEN ? AND ?", (first, last)
                        )
                    else:
                        freed += self._scalar(
                            "SELECT coalesce(sum(length(payload)), 0) + ? * count(*) "
                            "FROM messages WHERE stream = ? AND seq BETWEEN ? AND ?",
                            (MESSAGE_OVERHEAD_BYTES, stream, first, last),
                        )
                        cur = self._db.execute(
                            "DELETE FROM messages WHERE stream = ? AND seq BETWEEN ? AND ?",
                            (stream, first, last),
                        )
                    deleted += cur.rowcount
                self._set_counter(f"acked:{stream}", self._counter(f"acked:{stream}") + deleted)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if stream == TELEMETRY:
                self._fix_rows -= deleted
            else:
                self._msg_rows -= deleted
                self._msg_bytes -= freed
        return deleted

    # -- read ----------------------------------------------------------------------------
    def fixes_after(self, after_seq: int, limit: int) -> list[Fix]:
        """Queued fixes with seq > after_seq, oldest first (the replay order)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM fixes WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [Fix(*r) for r in rows]

    def messages_after(self, stream: str, after_seq: int, limit: int) -> list[QueuedMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload FROM messages WHERE stream = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (stream, after_seq, limit),
            ).fetchall()
        return [QueuedMessage(stream, int(s), bytes(p)) for s, p in rows]

    def any_in_range(self, stream: str, first: int, last: int) -> bool:
        with self._lock:
            if stream == TELEMETRY:
                sql = "SELECT 1 FROM fixes WHERE seq BETWEEN ? AND ? LIMIT 1"
                return self._db.execute(sql, (first, last)).fetchone() is not None
            sql = "SELECT 1 FROM messages WHERE stream = ? AND seq BETWEEN ? AND ? LIMIT 1"
            return self._db.execute(sql, (stream, first, last)).fetchone() is not None

    def queued_seqs(self, stream: str = TELEMETRY) -> list[int]:
        """Every queued seq of a stream (for tests and tools; not for the hot path)."""
        with self._lock:
            if stream == TELEMETRY:
                rows = self._db.execute("SELECT seq FROM fixes ORDER BY seq").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT seq FROM messages WHERE stream = ? ORDER BY seq", (stream,)
                ).fetchall()
        return [int(r[0]) for r in rows]

    # -- counters ------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Positions dropped by the caps, ever (persisted, exact)."""
        with self._lock:
            return self._counter("dropped:telemetry")

    def next_seq(self, stream: str) -> int:
        with self._lock:
            return max(self._counter(f"next_seq:{stream}"), self._seq_base)

    def bump(self, name: str) -> int:
        """Raise a persisted counter by one and return its new value (e.g. connections)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                value = self._counter(name) + 1
                self._set_counter(name, value)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return value

    def reserve(self, stream: str, n: int) -> int:
        """Reserve n seqs of a stream that is not queued here (e.g. best-effort sensors):
        committed, so they are never handed out twice even across restarts."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                first = self._take_seqs(stream, n)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return first

    def stats(self) -> dict[str, int]:
        with self._lock:
            out = {
                "fix_rows": self._fix_rows,
                "message_rows": self._msg_rows,
                "bytes_used": self.bytes_used,
            }
            for name, value in self._db.execute("SELECT name, value FROM counters"):
                out[str(name)] = int(value)
        return out

    def integrity_ok(self) -> bool:
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0]) == "ok"

    def close(self) -> None:
        with self._lock:
            self._db.close()
