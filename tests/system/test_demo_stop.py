"""`flota demo` without --duration runs until interrupted; SIGINT (Ctrl-C) or SIGTERM stops
every process it started, in order, and leaves nothing running. SIGKILL of the supervisor alone
leaves nothing running either (every child, PostgreSQL included, has a parent-death signal);
only the work folder stays."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _processes_of(run_dir: str) -> list[str]:
    """Processes whose environment carries the run's marker (set on every child), or whose
    working folder is in the run's (PostgreSQL's processes: they work in their data folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if f"FLOTA_DEMO_RUN={run_dir}".encode() in environ or cwd.startswith(f"{run_dir}/"):
            found.append(f"{proc.name}: {cmdline}")
    return found


def _start_until_ready(vehicles: int) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start `flota demo` (no duration); return it, its work folder and its stderr lines once
    it says it is ready (or after two minutes: the caller's assertions then show the log)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flota", "demo", "--vehicles", str(vehicles)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    run_dir = ""
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        lines.append(line)
        m = re.search(r"work folder (\S+)", line)
        run_dir = run_dir or (m.group(1) if m else "")
        if "ready:" in line or time.monotonic() > deadline:
            break
    return proc, run_dir, lines


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_demo_stops_everything_it_started(sig: signal.Signals) -> None:
    proc, run_dir, lines = _start_until_ready(2)
    assert proc.stderr is not None
    try:
        assert run_dir, "".join(lines[-20:])
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


def _postgres_of(run_dir: str) -> list[str]:
    return [p for p in _processes_of(run_dir) if "postgres" in p]


@pytest.mark.slow
def test_a_killed_demo_leaves_no_process_behind() -> None:
    proc, run_dir, lines = _start_until_ready(1)
    try:
        assert run_dir, "".join(lines[-20:])
        assert any("ready:" in x for x in lines), "".join(lines[-20:])
        assert _postgres_of(run_dir), _processes_of(run_dir)  # the server and its workers
        assert len(_processes_of(run_dir)) >= 7  # PostgreSQL, brokers, cloud, the agent
        proc.kill()  # the supervisor only: nobody stops the children in order
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60
        while _processes_of(run_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _processes_of(run_dir)
        assert left == [], left
        assert Path(run_dir).is_dir()  # nobody was left to delete it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
