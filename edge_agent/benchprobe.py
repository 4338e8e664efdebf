"""The measured agent process of ``flota bench edge`` (not used by the agent itself).

It lives here, not in the CLI module, so that the process measured imports what
``python -m edge_agent`` imports and nothing more (typer and the CLI would add ~2 MB).
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM / RssAnon / RssFile of this process from /proc (kB -> MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _top_mappings(n: int = 8) -> dict[str, float]:
    """Resident MB per mapped file (and [heap], [anon]) from /proc/self/smaps, largest first."""
    sizes: dict[str, float] = {}
    name = "[anon]"
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
            name = Path(parts[5]).name if len(parts) > 5 else "[anon]"
        elif parts and parts[0] == "Rss:":
            sizes[name] = sizes.get(name, 0.0) + int(parts[1]) / 1024
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:n]
    return {k: round(v, 1) for k, v in top}


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process (Python names; others by OS name)."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            comm = (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick
        name = names.get(int(task.name), comm)
        out[name] = out.get(name, 0.0) + cpu
    return out


def child(seconds: float, warmup_s: float) -> None:
    """The measured agent process (run by ``agent_process``); prints one JSON line."""
    import threading

    import numpy as np

    from edge_agent.agent import Agent
    from edge_agent.settings import load_settings

    agent = Agent(load_settings())  # fields come from the environment
    agent.start()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            agent.step(0.1)

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(warmup_s)
    windows0 = agent.harsh.windows if agent.harsh is not None else 0
    epochs0 = agent.pipeline.counters["epochs"]
    t0_threads = _thread_cpu()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.perf_counter()
    time.sleep(seconds)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    t1_threads = _thread_cpu()
    wall = time.perf_counter() - w0
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    stop.set()
    t.join()
    windows = (agent.harsh.windows if agent.harsh is not None else 0) - windows0
    out: dict[str, Any] = {
        "rss_mb": round(_status_mb("VmRSS"), 1),
        "rss_peak_mb": round(_status_mb("VmHWM"), 1),
        "rss_anon_mb": round(_status_mb("RssAnon"), 1),
        "rss_file_mb": round(_status_mb("RssFile"), 1),
        "rss_top_mappings_mb": _top_mappings(),
        "cpu_percent": round(100 * cpu / wall, 2),
        "cpu_window_s": round(wall, 1),
        "cpu_percent_by_thread": {
            name: round(100 * (t1_threads[name] - t0_threads.get(name, 0.0)) / wall, 2)
            for name in sorted(t1_threads)
        },
        "gps_epochs": agent.pipeline.counters["epochs"] - epochs0,
        "imu_windows_classified": windows,
        "models_loaded": sorted(agent.slots),
        "outbox_fix_rows": agent.outbox.fix_rows,
        "outbox_file_mb": round(agent.settings.outbox_path.stat().st_size / 1e6, 1),
        "mcu_rx_imu_batch": sum(
            dict(getattr(s, "link", None).counts).get("rx_imu_batch", 0)  # type: ignore[union-attr]
            for s in agent.sources
            if s.name == "mcu"
        ),
    }
    if agent.harsh is not None:  # latency of one window through features + onnxruntime
        from edge_agent.inference import imu_features

        rng = np.random.default_rng(0)
        acc = rng.normal(0, 1, (1, 200, 3)) + np.array([0, 0, 9.81])
        gyro = rng.normal(0, 0.05, (1, 200, 3))
        frame = np.eye(3)[None]
        window = imu_features.align(acc, gyro, frame, np.array([[0, 0, 9.81]]), np.zeros((1, 3)))
        slot = agent.slots["harsh_driving"]
        # Back to back (a burst: the thread runs ~0.3 s straight and the scheduler of a loaded
        # machine preempts it now and then), and paced (a window every 5 ms, the thread
        # sleeping in between, as the agent's loop does between its 1 s blocks).
        for label, pause_s in (("", 0.0), ("paced_", 0.005)):
            ns, cpu_ns = [], []
            for _ in range(1000):  # beside the running sources, as in the agent
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                slot.classify(window)
                cpu_ns.append(time.thread_time_ns() - c0)
                ns.append(time.perf_counter_ns() - t0)
                if pause_s:
                    time.sleep(pause_s)
            # wall: includes time the thread waited for a core or the GIL (a shared machine);
            # cpu: the work itself (this thread's CPU time), what the window costs the device
            out[f"inference_{label}p99_ms"] = round(float(np.percentile(ns, 99)) / 1e6, 3)
            out[f"inference_{label}p50_ms"] = round(float(np.percentile(ns, 50)) / 1e6, 3)
            out[f"inference_{label}cpu_p99_ms"] = round(float(np.percentile(cpu_ns, 99)) / 1e6, 3)
            out[f"inference_{label}cpu_p50_ms"] = round(float(np.percentile(cpu_ns, 50)) / 1e6, 3)
    agent.close()
    print(json.dumps(out), flush=True)
