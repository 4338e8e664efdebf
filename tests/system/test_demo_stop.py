"""`flota demo` without --duration runs until interrupted; SIGINT (Ctrl-C) or SIGTERM stops
every process it started, in order, and leaves nothing running."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _processes_of(run_dir: str) -> list[str]:
    """Processes whose environment carries the run's marker (set on every child)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"FLOTA_DEMO_RUN={run_dir}".encode() in environ:
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_demo_stops_everything_it_started(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flota", "demo", "--vehicles", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    run_dir = None
    lines = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stderr:
            lines.append(line)
            m = re.search(r"work folder (\S+)", line)
            run_dir = run_dir or (m.group(1) if m else None)
            if "ready:" in line or time.monotonic() > deadline:
                break
        assert run_dir is not None, "".join(lines[-20:])
        assert any("ready:" in x for x in lines), "".join(lines[-20:])
        assert len(_processes_of(run_dir)) >= 8  # brokers, 4 cloud processes, 2 agents
        proc.send_signal(sig)
        rc = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest = proc.stderr.read()
    assert rc == 130, rest[-2000:]
    assert "everything stopped" in rest
    assert _processes_of(run_dir) == []
    assert not Path(run_dir).exists()
