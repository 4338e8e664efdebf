"""Run the service: in the foreground (`flota models serve`) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType

import uvicorn

from cloud.models_service.app import create_app
from cloud.models_service.registry import ModelRegistry
from cloud.models_service.settings import ModelsServiceSettings

log = logging.getLogger(__name__)


def _server(settings: ModelsServiceSettings) -> tuple[uvicorn.Server, ModelRegistry]:
    app, registry, _ = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    return uvicorn.Server(config), registry


def serve(settings: ModelsServiceSettings) -> None:
    """Serve until interrupted; models are reloaded when their files change."""
    server, registry = _server(settings)
    registry.start(settings.reload_interval_s)
    log.info(
        "models: serving %s on http://%s:%d", registry.versions(), settings.host, settings.port
    )
    try:
        server.run()
    finally:
        registry.stop()


class ServiceThread:
    """The service on an ephemeral 127.0.0.1 port in a background thread; ``url`` once started.

    ``with ServiceThread(settings) as svc: ModelServiceClient(svc.url)...``
    """

    def __init__(self, settings: ModelsServiceSettings) -> None:
        self.settings = settings.model_copy(update={"host": "127.0.0.1"})
        self.server, self.registry = _server(self.settings)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", settings.port))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.sock]},
            name="models-http",
            daemon=True,
        )

    def start(self, timeout_s: float = 30.0) -> ServiceThread:
        self.registry.start(self.settings.reload_interval_s)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the model service did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self.registry.stop()
        self.sock.close()

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
