"""Parse can-utils `candump` text: default, -t a/d/z/A timestamps, -L log, CAN FD, RTR, errors.

vcan0  1F4   [4]  01 02 03 04                 (default)
(1594172461.968006) vcan0 0C8#F000000000000000  (-L log; ## is CAN FD, #R remote)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from firmware_bridge.records import CanFrame

_TS = r"\(\s*(?P<ts>[0-9.]+|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\)"
_SCREEN = re.compile(
    rf"^\s*(?:{_TS}\s+)?(?P<if>\S+)\s+(?P<id>[0-9A-Fa-f]{{3,8}})\s+\[(?P<dlc>\d+)\]\s*"
    r"(?P<rest>.*)$"
)
_LOG = re.compile(
    rf"^\s*{_TS}\s+(?P<if>\S+)\s+(?:(?P<err>ERROR)|(?P<id>[0-9A-Fa-f]{{3,8}})#(?P<body>#?[^\s]*))\s*$"
)


def _time(ts: str | None) -> float | None:
    if ts is None:
        return None
    if "-" in ts:
        return datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
    return float(ts)


def parse_line(line: str) -> CanFrame | None:
    """One line -> CanFrame; None for comments and blank lines; ValueError if unparseable."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    m = _LOG.match(line)
    if m:
        when = _time(m.group("ts"))
        if m.group("err"):
            return CanFrame(0, b"", error=True, time_utc=when, channel=m.group("if"))
        ident, body = m.group("id"), m.group("body")
        extended = len(ident) == 8
        if body.startswith("#"):  # CAN FD: one flags nibble, then data
            return CanFrame(
                int(ident, 16),
                bytes.fromhex(body[2:]),
                extended,
                fd=True,
                time_utc=when,
                channel=m.group("if"),
            )
        if body.upper().startswith("R"):
            return CanFrame(
                int(ident, 16), b"", extended, remote=True, time_utc=when, channel=m.group("if")
            )
        return CanFrame(
            int(ident, 16), bytes.fromhex(body), extended, time_utc=when, channel=m.group("if")
        )
    m = _SCREEN.match(line)
    if not m:
        raise ValueError(f"not candump text: {line!r}")
    ident, dlc, rest = m.group("id"), int(m.group("dlc")), m.group("rest")
    when = _time(m.group("ts"))
    extended = len(ident) == 8
    if "remote request" in rest:
        return CanFrame(
            int(ident, 16), b"", extended, remote=True, time_utc=when, channel=m.group("if")
        )
    hex_part = rest.split("'")[0]
    error = "ERRORFRAME" in hex_part
    hex_part = hex_part.replace("ERRORFRAME", "")
    data = bytes.fromhex("".join(hex_part.split()))
    if len(data) != dlc:
        raise ValueError(f"dlc {dlc} but {len(data)} data bytes: {line!r}")
    return CanFrame(
        int(ident, 16),
        data,
        extended,
        error=error,
        fd=dlc > 8,
        time_utc=when,
        channel=m.group("if"),
    )


def read(lines: Iterable[str], counts: Counter[str] | None = None) -> Iterator[CanFrame]:
    """Frames of a candump text; unparseable lines are counted under "bad_line" and skipped."""
    for line in lines:
        try:
            frame = parse_line(line.rstrip("\r\n"))
        except ValueError:
            if counts is not None:
                counts["bad_line"] += 1
            continue
        if frame is not None:
            yield frame
