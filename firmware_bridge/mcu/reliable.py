"""Sequence numbers, acknowledgement and retransmission, shared by both ends of the MCU link.

Pure state machines with the clock passed in, so the host link and the MCU simulator use the
same rules and tests can drive them without sleeping.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

from firmware_bridge.mcu import frame as fr
from firmware_bridge.mcu.messages import MsgType, NackReason

SEQ_MOD = 1 << 16


@dataclass(slots=True)
class _Pending:
    mtype: int
    payload: bytes
    reliable: bool


@dataclass(slots=True)
class _Outstanding:
    wire: bytes
    deadline: float
    tries: int


class ReliableSender:
    """Assigns sequence numbers and keeps at most `window` ACK_REQ frames unacknowledged.

    A frame is retransmitted after `timeout_s` without ACK, or at once on NACK CORRUPT, and
    given up after `max_tries` transmissions (counted). NACK VERSION / UNKNOWN_TYPE / MALFORMED
    for an outstanding seq drops it: resending the same bytes cannot help.
    """

    def __init__(
        self,
        version: int = 1,
        window: int = 1,
        timeout_s: float = 0.05,
        max_tries: int = 5,
        queue_limit: int = 256,
    ) -> None:
        self.version = version
        self.window = window
        self.timeout_s = timeout_s
        self.max_tries = max_tries
        self.queue_limit = queue_limit
        self.next_seq = 0
        self._queue: deque[_Pending] = deque()
        self._out: OrderedDict[int, _Outstanding] = OrderedDict()
        self.counts: Counter[str] = Counter()

    def reset(self) -> None:
        """New session: seq restarts at 0 and everything queued is forgotten."""
        self.next_seq = 0
        self._queue.clear()
        self._out.clear()

    @property
    def idle(self) -> bool:
        return not self._queue and not self._out

    def submit(self, mtype: int, payload: bytes, reliable: bool = True) -> None:
        """Queue a message; the oldest queued one is dropped (counted) when the queue is full."""
        if len(self._queue) >= self.queue_limit:
            self._queue.popleft()
            self.counts["queue_dropped"] += 1
        self._queue.append(_Pending(mtype, payload, reliable))

    def _build(self, p: _Pending) -> tuple[int, bytes]:
        seq = self.next_seq
        self.next_seq = (seq + 1) % SEQ_MOD
        flags = fr.FLAG_ACK_REQ if p.reliable else 0
        return seq, fr.encode(fr.Frame(self.version, p.mtype, flags, seq, p.payload))

    def poll(self, now: float) -> list[bytes]:
        """What to write now: due retransmissions first, then new frames the window allows."""
        out: list[bytes] = []
        for seq in list(self._out):
            o = self._out[seq]
            if now < o.deadline:
                continue
            if o.tries >= self.max_tries:
                del self._out[seq]
                self.counts["gave_up"] += 1
                continue
            o.tries += 1
            o.deadline = now + self.timeout_s
            self.counts["retransmitted"] += 1
            out.append(o.wire)
        while self._queue and (not self._queue[0].reliable or len(self._out) < self.window):
            p = self._queue.popleft()
            seq, wire = self._build(p)
            if p.reliable:
                self._out[seq] = _Outstanding(wire, now + self.timeout_s, 1)
            self.counts["sent"] += 1
            out.append(wire)
        return out

    def on_ack(self, seq: int) -> None:
        if self._out.pop(seq, None) is not None:
            self.counts["acked"] += 1
        else:
            self.counts["stale_ack"] += 1

    def on_nack(self, seq: int, reason: NackReason, now: float) -> None:
        if reason == NackReason.CORRUPT:
            for o in self._out.values():
                o.deadline = now  # resend what is outstanding on the next poll
            return
        if self._out.pop(seq, None) is not None:
            self.counts["refused"] += 1


class DuplicateFilter:
    """Remembers the last `depth` sequence numbers of one sender's session."""

    def __init__(self, depth: int = 64) -> None:
        self._order: deque[int] = deque()
        self._seen: set[int] = set()
        self.depth = depth

    def reset(self) -> None:
        self._order.clear()
        self._seen.clear()

    def is_new(self, seq: int) -> bool:
        """True the first time `seq` is seen (and remember it), False for a duplicate."""
        if seq in self._seen:
            return False
        self._seen.add(seq)
        self._order.append(seq)
        if len(self._order) > self.depth:
            self._seen.discard(self._order.popleft())
        return True


def ack_frame(version: int, seq: int) -> bytes:
    return fr.encode(fr.Frame(version, MsgType.ACK, 0, seq, b""))


def nack_frame(version: int, seq: int, reason: NackReason) -> bytes:
    return fr.encode(fr.Frame(version, MsgType.NACK, 0, seq, bytes([reason])))
