"""The demo's live terminal view (rich) and its plain-log twin for when stderr is not a
terminal (CI, a pipe): the same snapshot, drawn or logged."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from flota.demo.etas import NextStop
from flota.demo.status import Snapshot


def _fmt(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def render(s: Snapshot, phase: str) -> Group:
    top = Table.grid(padding=(0, 3))
    for _ in range(4):
        top.add_column(justify="left")
    top.add_row(
        f"[b]vehicles online[/b] {s.online}/{len(s.vehicles)}",
        f"[b]fixes/s[/b] {s.fixes_per_s:.1f}",
        f"[b]rows stored[/b] {_fmt(s.fixes_stored)}",
        f"[b]consumer lag[/b] {_fmt(s.consumer_lag)}",
    )
    top.add_row(
        f"[b]queued on vehicles[/b] {_fmt(s.queued)}",
        f"[b]events[/b] {sum(s.events.values())}",
        f"[b]plans pushed/applied[/b] {s.plans_pushed}/{s.plans_acked}"
        + (f" [red]refused {s.plans_refused}[/red]" if s.plans_refused else ""),
        f"[b]orders[/b] {s.orders} (done {s.orders_done})",
    )
    quarantine = ", ".join(f"{k} {v}" for k, v in sorted(s.quarantine.items())) or "none"
    events = ", ".join(f"{k} {v}" for k, v in sorted(s.events.items())) or "none yet"
    sensors = ", ".join(f"{k} {v}" for k, v in sorted(s.sensors.items())) or "none yet"
    fleet = Table(expand=True, box=None, header_style="bold")
    cols = ("vehicle", "online", "fixes accepted", "queued", "km/h (cloud)", "fix age s",
            "IMU batches", "OBD", "stops done / in plan", "next stop",
            "ETA min (model/plan)")  # fmt: skip
    for col in cols:
        fleet.add_column(col, justify="right" if col != "vehicle" else "left")
    for v in s.vehicles:
        fleet.add_row(
            v.name,
            "[green]yes[/green]" if v.online else "[red]no[/red]",
            _fmt(v.accepted),
            _fmt(v.queued),
            "-" if v.speed_kmh is None else f"{v.speed_kmh:.0f}",
            "-" if v.age_s is None else f"{v.age_s:.0f}",
            _fmt(v.imu_batches),
            "ready" if v.obd_ready else "-",
            f"{v.stops_done}/{v.stops_planned}",
            *_next(v.next_stop),
        )
    title = f"flota demo  t={s.elapsed_s:5.0f} s  {phase}"
    return Group(
        Panel(top, title=title, title_align="left"),
        f"  events: {events}",
        f"  sensor samples stored: {sensors}",
        f"  quarantine: {quarantine}",
        fleet,
    )


def _next(n: NextStop | None) -> tuple[str, str]:
    if n is None:
        return "-", "-"

    def minutes(s: float | None) -> str:
        return "-" if s is None else f"{s / 60:.0f}"

    return f"{n.stop_id} (+{n.stops_left - 1})", f"{minutes(n.eta_s)}/{minutes(n.planned_eta_s)}"


class View:
    """A rich Live display on a terminal, else a log line every ``log_every_s``."""

    def __init__(self, log_every_s: float = 5.0) -> None:
        self.console = Console(stderr=True)
        self.live: Live | None = None
        self.log_every_s = log_every_s
        self._last_log = -1e9

    def __enter__(self) -> View:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def show(self, s: Snapshot, phase: str) -> None:
        if self.live is not None:
            self.live.update(render(s, phase))
            return
        if s.elapsed_s - self._last_log < self.log_every_s:
            return
        self._last_log = s.elapsed_s
        print(
            f"[flota demo] t={s.elapsed_s:5.0f}s {phase}: online {s.online}/{len(s.vehicles)}"
            f" stored={s.fixes_stored} ({s.fixes_per_s:.1f}/s) queued={s.queued}"
            f" lag={_fmt(s.consumer_lag)} events={sum(s.events.values())}"
            f" plans={s.plans_pushed}/{s.plans_acked} orders={s.orders} done={s.orders_done}",
            file=sys.stderr,
            flush=True,
        )

    def say(self, msg: str) -> None:
        if self.live is not None:
            self.live.console.print(f"[flota demo] {msg}")
        else:
            print(f"[flota demo] {msg}", file=sys.stderr, flush=True)
