"""`flota nmea`: decode NMEA 0183 captures, and hold the decoder against gpsd's answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from edge_agent.gps.counters import Counters
    from edge_agent.gps.fix import GpsFix

app = typer.Typer(help="NMEA 0183 tools.", no_args_is_help=True)

CHUNK = 4096


def fix_json(fix: GpsFix) -> dict[str, Any]:
    """The one-line JSON form of a fix printed by `flota nmea decode`."""
    return {
        "time": fix.iso_time(),
        "lat": fix.lat,
        "lon": fix.lon,
        "alt": fix.alt_m,
        "speed": fix.speed_mps,
        "track": fix.track_deg,
        "mode": fix.mode,
        "quality": fix.quality,
        "hdop": fix.hdop,
        "sats": fix.sats,
    }


def decode_file(path: Path, counters: Counters | None = None) -> list[GpsFix]:
    """All fixes of a capture file (lines starting with # skipped), in order."""
    from edge_agent.gps.decoder import NmeaDecoder

    decoder = NmeaDecoder(counters, skip_comments=True)
    fixes: list[GpsFix] = []
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            fixes.extend(decoder.feed(chunk))
    fixes.extend(decoder.flush())
    return fixes


@app.command("decode")
def decode_cmd(
    files: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="Capture files.")
    ],
    stats: bool = typer.Option(False, "--stats", help="Print counters as JSON to stderr."),
) -> None:
    """Print one JSON object per completed epoch with a fix (fixes without a date skipped)."""
    from edge_agent.gps.counters import Counters

    counters = Counters()
    for path in files:
        for fix in decode_file(path, counters):
            if fix.time_s is None:
                counters.add("skipped_without_date")
                continue
            typer.echo(json.dumps(fix_json(fix)))
    if stats:
        typer.echo(json.dumps(counters.as_dict()), err=True)
    else:
        summary = " ".join(f"{k}={v}" for k, v in counters.as_dict().items())
        typer.echo(f"# {summary}", err=True)


@dataclass
class Comparison:
    """How our fixes agree with gpsd's TPV reports (mode >= 2, with a time) for one log."""

    name: str
    expected: int = 0
    matched: int = 0
    missing: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # same time, position off by > tolerance
    extra: int = 0  # fixes at times gpsd has no mode >= 2 report for
    # missing ones that we report exactly 1024 GPS weeks earlier, same position: gpsd moved a
    # date it took for a week rollover (it does so for pre-2017 dates in some versions)
    rollover: int = 0

    @property
    def rate(self) -> float:
        return 1.0 if self.expected == 0 else self.matched / self.expected


def gpsd_expected(chk: Path) -> dict[str, tuple[float, float]]:
    """time -> (lat, lon) of the last TPV with mode >= 2 at that time in a gpsd .chk file."""
    expected: dict[str, tuple[float, float]] = {}
    for line in chk.read_text(errors="replace").splitlines():
        if not line.startswith('{"class":"TPV"'):
            continue
        try:
            tpv = json.loads(line)
        except ValueError:
            continue
        if tpv.get("mode", 0) >= 2 and "time" in tpv and "lat" in tpv and "lon" in tpv:
            expected[tpv["time"]] = (float(tpv["lat"]), float(tpv["lon"]))
    return expected


def compare_log(log: Path, tolerance_deg: float = 1e-6) -> Comparison:
    """Decode `log` and compare it with gpsd's `log.chk`."""
    expected = gpsd_expected(log.with_name(log.name + ".chk"))
    ours: dict[str, tuple[float, float]] = {}
    for fix in decode_file(log):
        stamp = fix.iso_time()
        if stamp is not None:
            ours[stamp] = (fix.lat, fix.lon)
    result = Comparison(log.name, expected=len(expected))
    for stamp, (lat, lon) in expected.items():
        got = ours.get(stamp)
        if got is None:
            result.missing.append(stamp)
            earlier = _shift_weeks(stamp, -1024)
            if earlier in ours and _close(ours[earlier], (lat, lon), tolerance_deg):
                result.rollover += 1
        elif _close(got, (lat, lon), tolerance_deg):
            result.matched += 1
        else:
            result.moved.append(stamp)
    shifted = {_shift_weeks(stamp, -1024) for stamp in result.missing}
    result.extra = len(set(ours) - set(expected) - shifted)
    return result


def _rate(c: Comparison) -> str:
    return f"{c.rate:.1%}" if c.expected else "n/a"


def _close(a: tuple[float, float], b: tuple[float, float], tolerance_deg: float) -> bool:
    return abs(a[0] - b[0]) <= tolerance_deg and abs(a[1] - b[1]) <= tolerance_deg


def _shift_weeks(stamp: str, weeks: int) -> str:
    from datetime import datetime, timedelta

    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(weeks=weeks)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@app.command("compare")
def compare_cmd(
    logs: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="NAME.log files.")
    ],
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List mismatched times."),
) -> None:
    """Compare decoded fixes with gpsd's expected output (NAME.log.chk beside each log)."""
    total = matched = 0
    typer.echo(
        "| log | gpsd fixes | matched | rate | missing | of which rollover | moved | extra |"
    )
    typer.echo("|---|---:|---:|---:|---:|---:|---:|---:|")
    for log in logs:
        c = compare_log(log)
        total += c.expected
        matched += c.matched
        typer.echo(
            f"| {c.name} | {c.expected} | {c.matched} | {_rate(c)} | {len(c.missing)} "
            f"| {c.rollover} | {len(c.moved)} | {c.extra} |"
        )
        if verbose:
            for stamp in c.missing:
                typer.echo(f"  missing {stamp}")
            for stamp in c.moved:
                typer.echo(f"  moved {stamp}")
    rate = matched / total if total else 1.0
    typer.echo(f"| all | {total} | {matched} | {rate:.1%} | | | | |")
