"""Learned speeds held in memory per tenant, re-read only when the stored model changed.

Every `check_s` at most, one cheap query compares the stored version (learned_at) with the
one in memory; a new version is loaded, an unchanged one costs nothing more. A tenant with
no learned model, or a database error, gets the default speed (logged, never fatal).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cloud.optimizer.matrix import SpeedProvider
from cloud.optimizer.speeds.model import LearnedSpeeds

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    model: LearnedSpeeds | None
    checked: float


class SpeedCache:
    def __init__(
        self,
        version: Callable[[str], str | None],
        load: Callable[[str], LearnedSpeeds | None],
        default: SpeedProvider,
        *,
        check_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._version = version
        self._load = load
        self.default = default
        self.check_s = check_s
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self.loads = 0  # how many times a model was read (tests, logs)

    def provider(self, tenant: str) -> SpeedProvider:
        now = self.clock()
        entry = self._entries.get(tenant)
        if entry is not None and now - entry.checked < self.check_s:
            return entry.model or self.default
        try:
            stored = self._version(tenant)
            model = entry.model if entry is not None else None
            if stored is None:
                model = None
            elif model is None or model.version != stored:
                model = self._load(tenant)
                self.loads += 1
                if model is not None:
                    log.info("travel speeds for %s: model %s, %d keys", tenant, stored,
                             len(model.cells))  # fmt: skip
        except Exception as err:  # the database is not this cache's business to fix
            log.warning("cannot read learned speeds for %s (%s); using the default", tenant, err)
            model = entry.model if entry is not None else None
        self._entries[tenant] = _Entry(model, now)
        return model or self.default

    def invalidate(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._entries.clear()
        else:
            self._entries.pop(tenant, None)
