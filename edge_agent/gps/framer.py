"""Serial bytes -> checksum-valid NMEA sentences.

Survives what real receivers send: CR, LF or CRCRLF endings, two sentences collided on one line
(a `$` always starts a new sentence), NUL padding, binary protocol frames mixed in, escape
sequences, banners, over-long lines. Everything dropped is counted by reason.
"""

from __future__ import annotations

import re

from edge_agent.gps.counters import Counters

NMEA_MAX_LEN = 82  # the standard's limit, including $ and CRLF; many receivers exceed it
_LINE_SPLIT = re.compile(rb"[\r\n]+")
_HEX = frozenset(b"0123456789ABCDEFabcdef")


def nmea_checksum(body: bytes) -> int:
    """XOR of the bytes between `$` and `*`."""
    value = 0
    for byte in body:
        value ^= byte
    return value


class NmeaFramer:
    """Incremental framer: `feed()` raw bytes, get back sentences such as `$GPGGA,...*hh`.

    Sentences with a wrong checksum are dropped. Sentences with no checksum at all are dropped
    too unless `accept_missing_checksum` is set: on a noisy serial line an unchecked sentence is
    as likely to be a truncated one as a legitimate checksum-less talker, and a wrong position
    is worse than a missing one.
    """

    def __init__(
        self,
        counters: Counters | None = None,
        *,
        max_len: int = 2 * NMEA_MAX_LEN,
        max_buffer: int = 4096,
        accept_missing_checksum: bool = False,
        skip_comments: bool = False,
    ) -> None:
        self.counters = counters if counters is not None else Counters()
        self.max_len = max_len
        self.max_buffer = max_buffer
        self.accept_missing_checksum = accept_missing_checksum
        self.skip_comments = skip_comments
        self._buffer = b""

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the complete, valid sentences they finish."""
        buffer = self._buffer + data
        lines = _LINE_SPLIT.split(buffer)
        rest = lines.pop()
        if len(rest) > self.max_buffer:
            # No line end for a long time (binary stream): keep only a possible sentence start.
            cut = rest.rfind(b"$")
            if cut <= 0 or len(rest) - cut > self.max_len:
                cut = len(rest)
            lines.append(rest[:cut])
            rest = rest[cut:]
        self._buffer = rest
        out: list[str] = []
        for line in lines:
            self._frame_line(line, out)
        return out

    def flush(self) -> list[str]:
        """End of stream: frame whatever is left without a line end."""
        rest, self._buffer = self._buffer, b""
        out: list[str] = []
        self._frame_line(rest, out)
        return out

    def reset(self) -> None:
        """Forget a partial line (the port was reopened: its end will never come)."""
        if self._buffer.strip(b" \t\x00"):
            self.counters.add("partial_line_discarded", _show(self._buffer))
        self._buffer = b""

    def _frame_line(self, line: bytes, out: list[str]) -> None:
        if not line.strip(b" \t\x00"):
            return
        if self.skip_comments and line.startswith(b"#"):
            self.counters.add("comment_line")
            return
        start = line.find(b"$")
        if start < 0:
            self.counters.add("not_nmea", _show(line))
            return
        if line[:start].strip(b" \t\x00"):
            self.counters.add("leading_junk", _show(line[:start]))
        parts = line[start + 1 :].split(b"$")
        last = len(parts) - 1
        for index, part in enumerate(parts):
            sentence = self._check(part, collided=index < last)
            if sentence is not None:
                out.append(sentence)

    def _check(self, part: bytes, *, collided: bool) -> str | None:
        counters = self.counters
        part = part.rstrip(b" \t\x00")
        if len(part) + 3 > self.max_len:  # $ + CRLF
            counters.add("too_long", _show(part), warn=True)
            return None
        if not part.isascii() or any(byte < 0x20 or byte == 0x7F for byte in part):
            counters.add("binary_junk", _show(part))
            return None
        star = part.rfind(b"*")
        if star < 0:
            if collided:
                counters.add("collided", _show(part))
                return None
            if not self.accept_missing_checksum:
                counters.add("no_checksum", _show(part), warn=True)
                return None
            counters.add("accepted_without_checksum", _show(part))
            return "$" + part.decode("ascii")
        given = part[star + 1 :]
        if not given or len(given) > 2 or not all(byte in _HEX for byte in given):
            counters.add("collided" if collided else "malformed_checksum", _show(part))
            return None
        if int(given, 16) != nmea_checksum(part[:star]):
            counters.add("bad_checksum", _show(part), warn=True)
            return None
        if len(given) == 1:
            counters.add("one_digit_checksum", _show(part))
        if len(part) + 3 > NMEA_MAX_LEN:
            counters.add("over_82_chars")
        return "$" + part.decode("ascii")


def _show(data: bytes) -> str:
    return data[:100].decode("ascii", "backslashreplace")
