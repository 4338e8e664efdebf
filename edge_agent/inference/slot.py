"""One active model per task, replaced atomically: a candidate is loaded, warmed up and
self-tested aside; only then does one reference assignment make it active. A candidate that
fails leaves the old model serving (the roll-back is simply never switching)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.inference.config import ModelConfig
from edge_agent.inference.errors import InferenceError
from edge_agent.inference.runtime import Classifier, load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwapResult:
    ok: bool
    active_version: str
    previous_version: str | None
    error: str | None = None


class ModelSlot:
    """Holds the active classifier; ``classify`` never sees a half-loaded model."""

    def __init__(self, config: ModelConfig) -> None:
        self._active: Classifier = load_model(config)
        self._previous: Classifier | None = None
        self._lock = threading.Lock()  # serialises swaps; readers take the reference lock-free
        self.failed_swaps = 0

    @property
    def active(self) -> Classifier:
        return self._active

    def classify(self, windows: Any) -> npt.NDArray[np.float32]:
        model = self._active  # one read: the whole call uses one model
        return model.classify(windows)

    def swap(self, config: ModelConfig) -> SwapResult:
        """Try a new model; on any load, warm-up or self-test failure keep the current one."""
        with self._lock:
            current = self._active
            try:
                candidate = load_model(config)
            except InferenceError as err:
                self.failed_swaps += 1
                log.warning(
                    "model update rejected, keeping %s %s: %s", current.name, current.version, err
                )
                return SwapResult(False, current.version, None, str(err))
            self._previous, self._active = current, candidate
            return SwapResult(True, candidate.version, current.version)

    def rollback(self) -> SwapResult:
        """Return to the model that was active before the last successful swap."""
        with self._lock:
            if self._previous is None:
                return SwapResult(False, self._active.version, None, "nothing to roll back to")
            self._active, self._previous = self._previous, self._active
            return SwapResult(True, self._active.version, self._previous.version)


def promote(model_dir: Path, link: Path) -> None:
    """Point ``link`` (a symlink the agent loads from at start) at ``model_dir`` atomically."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(model_dir.resolve())
    os.replace(tmp, link)
