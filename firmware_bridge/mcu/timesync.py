"""MCU ticks -> host UTC: tick unwrapping and an NTP-like offset and drift estimate.

Each exchange gives four times: t1 (host UTC, request sent), r and t (MCU ticks, request
received and response sent), t4 (host UTC, response received). With the MCU clock in seconds
(ticks / tick_hz): offset = ((t1 - r) + (t4 - t)) / 2 and round-trip delay
rtt = (t4 - t1) - (t - r). The error of one offset is at most rtt / 2, so we keep the recent
exchanges, discard the slower half by rtt, and fit UTC = a + b * ticks by least squares;
drift_ppm = (1 / (b * tick_hz) - 1) * 1e6 (positive: the MCU clock runs fast). With too short
a span, or a drift beyond what a crystal allows, the nominal rate is used and only the offset
is estimated.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

WRAP = 1 << 32
HALF = 1 << 31


class TickUnwrapper:
    """Extends a wrapping 32-bit tick counter to a monotonic integer (per MCU boot).

    The first value seen fixes the epoch; a sample from before it (queued before a wrap but
    delivered after a later one) may come out negative, which keeps every tick consistent.
    """

    def __init__(self) -> None:
        self._last: int | None = None

    def reset(self) -> None:
        self._last = None

    def __call__(self, raw: int) -> int:
        raw &= WRAP - 1
        if self._last is None:
            self._last = raw
            return raw
        value = (self._last & ~(WRAP - 1)) | raw
        if value < self._last - HALF:
            value += WRAP
        elif value > self._last + HALF:
            value -= WRAP  # a late (retransmitted) sample from before the last wrap
        self._last = max(self._last, value)
        return value


@dataclass(frozen=True, slots=True)
class SyncSample:
    mcu_mid: float  # MCU ticks halfway between receive and send
    utc_mid: float  # host UTC seconds halfway between send and receive
    rtt: float  # seconds


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """UTC = utc0 + (ticks - tick0) * seconds_per_tick."""

    tick0: float
    utc0: float
    seconds_per_tick: float
    drift_ppm: float
    rtt_s: float  # best round trip seen: the offset's error bound is half of it
    samples: int

    def to_utc(self, tick: int) -> float:
        return self.utc0 + (tick - self.tick0) * self.seconds_per_tick


class ClockSync:
    """Collects time-sync exchanges for one MCU boot and estimates offset and drift."""

    def __init__(
        self, tick_hz: int, window: int = 32, min_span_s: float = 5.0, max_ppm: float = 500.0
    ) -> None:
        if tick_hz <= 0:
            raise ValueError("tick_hz must be positive")
        self.tick_hz = tick_hz
        self.min_span_s = min_span_s
        self.max_ppm = max_ppm
        self._samples: deque[SyncSample] = deque(maxlen=window)
        self.estimate: ClockEstimate | None = None

    def add(self, t1_utc: float, rx_tick: int, tx_tick: int, t4_utc: float) -> None:
        """Record one exchange (ticks already unwrapped) and refresh the estimate."""
        busy = (tx_tick - rx_tick) / self.tick_hz
        rtt = (t4_utc - t1_utc) - busy
        if rtt < 0 or busy < 0:
            return  # clock stepped on the host, or a reordered answer: useless
        self._samples.append(SyncSample((rx_tick + tx_tick) / 2, (t1_utc + t4_utc) / 2, rtt))
        self.estimate = self._fit()

    def to_utc(self, tick: int) -> float | None:
        return None if self.estimate is None else self.estimate.to_utc(tick)

    def _fit(self) -> ClockEstimate:
        ranked = sorted(self._samples, key=lambda s: s.rtt)
        best = ranked[: max(1, (len(ranked) + 1) // 2)]
        nominal = 1.0 / self.tick_hz
        n = len(best)
        mx = sum(s.mcu_mid for s in best) / n
        my = sum(s.utc_mid for s in best) / n
        sxx = sum((s.mcu_mid - mx) ** 2 for s in best)
        slope = nominal
        span_s = (max(s.mcu_mid for s in best) - min(s.mcu_mid for s in best)) * nominal
        if n >= 3 and span_s >= self.min_span_s and sxx > 0:
            fitted = sum((s.mcu_mid - mx) * (s.utc_mid - my) for s in best) / sxx
            if fitted > 0 and abs(_ppm(fitted, self.tick_hz)) <= self.max_ppm:
                slope = fitted
        return ClockEstimate(
            tick0=mx,
            utc0=my,
            seconds_per_tick=slope,
            drift_ppm=_ppm(slope, self.tick_hz),
            rtt_s=ranked[0].rtt,
            samples=len(self._samples),
        )


def _ppm(seconds_per_tick: float, tick_hz: int) -> float:
    """How fast the MCU clock runs against UTC, in parts per million."""
    return (1.0 / (seconds_per_tick * tick_hz) - 1.0) * 1e6
