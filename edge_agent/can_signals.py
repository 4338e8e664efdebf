"""CAN frames from the MCU link -> selected DBC signals -> sensor samples, rate-limited.

The vehicle bus carries hundreds of signals at 10-100 Hz; the cloud wants a few of them, at most
every ``min_interval_s`` each. Frames are decoded with cantools through
``firmware_bridge.canbus.dbc.DbcDecoder`` (numbers, not choice names); values go out in SI
units where the DBC's unit is a known non-SI one (km/h, degC, rpm, %, ...), else in the DBC's
unit. Frames of messages holding no selected signal are counted and skipped before decoding.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# DBC unit (lower case) -> (scale, offset, SI unit)
SI_UNITS: dict[str, tuple[float, float, str]] = {
    "km/h": (1 / 3.6, 0.0, "m/s"),
    "kph": (1 / 3.6, 0.0, "m/s"),
    "kmh": (1 / 3.6, 0.0, "m/s"),
    "mph": (0.44704, 0.0, "m/s"),
    "degc": (1.0, 273.15, "K"),
    "°c": (1.0, 273.15, "K"),
    "c": (1.0, 273.15, "K"),
    "degk": (1.0, 0.0, "K"),
    "k": (1.0, 0.0, "K"),
    "rpm": (1 / 60, 0.0, "1/s"),
    "1/min": (1 / 60, 0.0, "1/s"),
    "%": (0.01, 0.0, ""),
    "deg": (1.0, 0.0, "deg"),
    "bar": (1e5, 0.0, "Pa"),
    "kpa": (1e3, 0.0, "Pa"),
    "mbar": (100.0, 0.0, "Pa"),
    "km": (1e3, 0.0, "m"),
    "mv": (1e-3, 0.0, "V"),
    "ma": (1e-3, 0.0, "A"),
    "-": (1.0, 0.0, ""),
}


class CanConfigError(ValueError):
    """The DBC cannot be read, or a configured signal is not in it."""


@dataclass(frozen=True, slots=True)
class SignalSample:
    """One selected signal's value at one time, in SI where the unit is known."""

    name: str  # "Message.Signal"
    value: float
    unit: str
    time_s: float  # UTC seconds (the frame's MCU-synchronised time, else the agent's clock)


def to_si(value: float, unit: str) -> tuple[float, str]:
    scale, offset, si = SI_UNITS.get(unit.strip().lower(), (1.0, 0.0, unit))
    return value * scale + offset, si


class CanSignalSampler:
    """``offer(frame, now_s)`` -> the samples now due for that frame's selected signals."""

    def __init__(self, dbc: Path, signals: tuple[str, ...] = (), min_interval_s: float = 1.0):
        from firmware_bridge.canbus.dbc import DbcDecoder  # cantools: only with a DBC set

        try:
            self.decoder = DbcDecoder(dbc, choices=False)
        except Exception as err:  # cantools raises its own parse errors
            raise CanConfigError(f"DBC {dbc} not readable: {err}") from err
        self.min_interval_s = min_interval_s
        self.counts: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        # frame id -> {signal name -> "Message.Signal"} for the selected signals
        self._wanted: dict[int, dict[str, str]] = {}
        known: dict[str, list[tuple[int, str, str]]] = {}
        for msg in self.decoder.db.messages:
            for sig in msg.signals:
                entry = (msg.frame_id, msg.name, sig.name)
                known.setdefault(sig.name, []).append(entry)
                known.setdefault(f"{msg.name}.{sig.name}", []).append(entry)
        names = signals or tuple(
            f"{m.name}.{s.name}" for m in self.decoder.db.messages for s in m.signals
        )
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CanConfigError(f"signals not in {dbc.name}: {', '.join(unknown)}")
        for name in names:
            for frame_id, msg_name, sig_name in known[name]:
                self._wanted.setdefault(frame_id, {})[sig_name] = f"{msg_name}.{sig_name}"
        self.signals = tuple(sorted({q for m in self._wanted.values() for q in m.values()}))

    def offer(self, frame: Any, now_s: float) -> list[SignalSample]:
        wanted = self._wanted.get(frame.arbitration_id)
        if wanted is None:
            self.counts["frames_not_selected"] += 1
            return []
        t = frame.time_utc if frame.time_utc is not None else now_s
        due = {
            sig: q
            for sig, q in wanted.items()
            if t - self._last.get(q, -1e18) >= self.min_interval_s
        }
        if not due:
            self.counts["frames_rate_limited"] += 1
            return []
        decoded = self.decoder.decode(frame)
        if decoded is None:
            self.counts["frames_undecodable"] += 1  # the decoder counts why
            return []
        out = []
        for sig, q in due.items():
            sv = decoded.signals.get(sig)
            if sv is None or isinstance(sv.value, str | bool):
                self.counts["not_numeric"] += 1
                continue
            value, unit = to_si(float(sv.value), sv.unit)
            self._last[q] = t
            out.append(SignalSample(q, value, unit, t))
        self.counts["samples"] += len(out)
        return out
