"""Per-reason counters for dropped or odd input, with debug logging and rate-limited warnings.

Bad input is normal on a serial line; it must be visible (counts, a log line with the reason)
without flooding the log of a device that runs for months.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("edge_agent.gps")


class Counters:
    """Counts events by reason; warns at most once per `warn_interval_s` per reason."""

    def __init__(
        self,
        warn_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.counts: Counter[str] = Counter()
        self._warn_interval_s = warn_interval_s
        self._clock = clock
        self._log = logger
        self._last_warn: dict[str, float] = {}
        self._since_warn: Counter[str] = Counter()

    def add(self, reason: str, detail: str = "", *, warn: bool = False, n: int = 1) -> None:
        """Count `n` events of `reason`; log at debug, and warn (rate-limited) when asked."""
        self.counts[reason] += n
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("nmea %s: %.120r", reason, detail)
        if not warn:
            return
        self._since_warn[reason] += n
        now = self._clock()
        last = self._last_warn.get(reason)
        if last is None or now - last >= self._warn_interval_s:
            self._log.warning(
                "nmea %s: %d since last warning (%d total); last: %.80r",
                reason,
                self._since_warn[reason],
                self.counts[reason],
                detail,
            )
            self._last_warn[reason] = now
            self._since_warn[reason] = 0

    def __getitem__(self, reason: str) -> int:
        return self.counts[reason]

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))
