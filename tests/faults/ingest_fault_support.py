"""Private services for the ingest fault tests: a Kafka broker of our own (restartable without
touching the shared stack) and helpers to run ``flota`` processes as subprocesses. The bridge +
store configuration and the acknowledging device come from tests/integration/pipeline_support.py
(re-exported here), shared with the integration tests."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KAFKA_DIR = REPO / "deploy" / "local" / "kafka"
if str(REPO / "tests" / "integration") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "integration"))

from pipeline_support import AckDevice, ingest_database, process_env  # noqa: E402

__all__ = ["AckDevice", "PrivateKafka", "flota", "free_port", "ingest_database", "process_env"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _classpath() -> str:
    cache = Path(os.environ.get("FLOTA_CACHE", str(Path.home() / ".cache" / "flota")))
    key = hashlib.sha256((KAFKA_DIR / "pom.xml").read_bytes()).hexdigest()[:16]
    cp_file = cache / "kafka" / f"classpath-{key}.txt"
    if not cp_file.exists():
        pytest.fail(
            f"{cp_file} missing: start the local stack once (deploy/local/start.sh) so the "
            "Kafka jars are cached",
            pytrace=False,
        )
    return cp_file.read_text().strip()


class PrivateKafka:
    """A one-node KRaft broker on free loopback ports with its state under ``state``."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.controller_port = free_port()
        self.cp = _classpath()
        self.proc: subprocess.Popen[bytes] | None = None
        state.mkdir(parents=True, exist_ok=True)
        template = (KAFKA_DIR / "server.properties.in").read_text()
        self.conf = state / "server.properties"
        self.conf.write_text(
            template.replace("@STATE@", str(state))
            .replace("@PORT@", str(self.port))
            .replace("@CONTROLLER_PORT@", str(self.controller_port))
        )
        self.jvm = [
            "java", "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={state}", "-cp", self.cp,
        ]  # fmt: skip
        cluster = urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        subprocess.run(
            [*self.jvm, "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster,
             "-c", str(self.conf)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        log = (self.state / "kafka.out").open("ab")
        self.proc = subprocess.Popen(
            [*self.jvm, "kafka.Kafka", str(self.conf)], stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            assert self.proc.poll() is None, "private Kafka exited"
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
                try:
                    admin.list_topics()
                    return
                finally:
                    admin.close()
            except (KafkaError, OSError):
                time.sleep(0.5)
        raise AssertionError("private Kafka did not come up")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def flota(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m flota ARGS`` with ``env`` added, output appended to ``log``."""
    full = dict(os.environ)
    full.update(env)
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "flota", *args], env=full, cwd=REPO, stdout=out, stderr=out,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
