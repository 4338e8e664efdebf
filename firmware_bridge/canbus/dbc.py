"""Decode CAN frames to signals with a DBC file; unknown ids and bad data are counted."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import cantools

from firmware_bridge.records import CanFrame, CanSignals, SignalValue

log = logging.getLogger(__name__)


class DbcDecoder:
    """`decode(frame)` returns the message's signals (value and the DBC's unit) or None."""

    def __init__(self, *paths: str | Path, choices: bool = True) -> None:
        """``choices``: named values (VAL_) as their names; False keeps the numbers."""
        self.choices = choices
        self.db = cantools.database.Database()
        for path in paths:
            self.db.add_dbc_file(str(path))
        self.counts: Counter[str] = Counter()
        self._by_id = {(m.frame_id, bool(m.is_extended_frame)): m for m in self.db.messages}

    def decode(self, frame: CanFrame) -> CanSignals | None:
        if frame.remote or frame.error:
            self.counts["not_data"] += 1
            return None
        msg = self._by_id.get((frame.arbitration_id, frame.extended))
        if msg is None:
            msg = self._by_id.get((frame.arbitration_id, not frame.extended))
        if msg is None:
            self.counts["unknown_id"] += 1
            return None
        if len(frame.data) < msg.length:
            self.counts["malformed"] += 1
            log.debug("%s: %d bytes, DBC says %d", msg.name, len(frame.data), msg.length)
            return None
        try:
            values = msg.decode(frame.data, decode_choices=self.choices)
        except (cantools.database.DecodeError, ValueError, KeyError, IndexError) as err:
            self.counts["malformed"] += 1
            log.debug("%s: %s", msg.name, err)
            return None
        if not isinstance(values, dict):  # a container message: not used on our buses
            self.counts["unsupported"] += 1
            return None
        self.counts["decoded"] += 1
        signals: dict[str, SignalValue] = {}
        for name, value in values.items():
            sig = msg.get_signal_by_name(name)
            plain = value if isinstance(value, int | float) else str(value)
            signals[name] = SignalValue(plain, sig.unit or "")
        return CanSignals(frame.arbitration_id, msg.name, signals, frame.time_utc)

    def decode_raw(
        self, arbitration_id: int, data: bytes, extended: bool = False
    ) -> CanSignals | None:
        return self.decode(CanFrame(arbitration_id, data, extended))
