"""The models the service serves, reloaded when their files change.

A changed folder is loaded and verified aside; only a model that passes (sha256 against its card,
self-test) replaces the one serving. A failure is logged and counted and the old model keeps
serving; the same files are not retried until they change again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from cloud.models_service.errors import ModelLoadError, ModelUnavailableError
from cloud.models_service.loaded import LoadedModel, Stamp, load_model, stamp

log = logging.getLogger(__name__)
SERVED = ("eta", "demand")

Listener = Callable[[str, str, LoadedModel | None], None]  # (model, "ok"|"error", model)


class ModelRegistry:
    def __init__(
        self,
        root: Path,
        names: Iterable[str] = SERVED,
        threads: int = 1,
        on_load: Listener | None = None,
    ) -> None:
        self.root = root
        self.names = tuple(names)
        self.threads = threads
        self._models: dict[str, LoadedModel] = {}
        self._seen: dict[str, Stamp | None] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._on_load = on_load
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.check()

    def get(self, name: str) -> LoadedModel:
        model = self._models.get(name)
        if model is None:
            why = self._errors.get(name, "not loaded")
            raise ModelUnavailableError(f"model {name!r} is not available: {why}")
        return model

    def versions(self) -> dict[str, str | None]:
        return {n: (m.version if (m := self._models.get(n)) else None) for n in self.names}

    def errors(self) -> dict[str, str]:
        return dict(self._errors)

    def check(self) -> list[str]:
        """Load every model whose files changed since last looked at; the names reloaded."""
        changed = []
        with self._lock:
            for name in self.names:
                folder = self.root / name
                now = stamp(folder)
                if name in self._seen and now == self._seen[name]:
                    continue
                self._seen[name] = now
                try:
                    model = load_model(folder, name, self.threads)
                except ModelLoadError as err:
                    self._errors[name] = str(err)
                    log.error(
                        "models: %s; %s",
                        err,
                        "keeping the loaded version" if name in self._models else "not serving it",
                    )
                    if self._on_load:
                        self._on_load(name, "error", None)
                    continue
                self._seen[name] = model.stamp
                old = self._models.get(name)
                self._models[name] = model
                self._errors.pop(name, None)
                changed.append(name)
                log.info(
                    "models: %s %s (sha256 %s) %s",
                    name,
                    model.version,
                    model.sha256[:12],
                    f"replaces {old.version} ({old.sha256[:12]})" if old else "loaded",
                )
                if self._on_load:
                    self._on_load(name, "ok", model)
        return changed

    def start(self, interval_s: float) -> None:
        """Look for changed files every ``interval_s`` in a daemon thread."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.check()
                except Exception:  # never let the watcher die; the next tick tries again
                    log.exception("models: reload check failed")

        self._thread = threading.Thread(target=loop, name="models-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
