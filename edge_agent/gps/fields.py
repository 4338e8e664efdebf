"""Range-checked parsers for NMEA field strings. Each returns None for an empty field and
raises FieldError (with a counter reason) for a malformed one."""

from __future__ import annotations

import math
import re
from datetime import date

_TIME = re.compile(r"^(\d\d)(\d\d)(\d\d(?:\.\d*)?)$")
_ANGLE = re.compile(r"^(\d{1,3})(\d\d(?:\.\d*)?)$")

KNOT_MPS = 1852.0 / 3600.0
KMH_MPS = 1000.0 / 3600.0


class FieldError(ValueError):
    def __init__(self, reason: str, value: str) -> None:
        super().__init__(f"{reason}: {value[:40]!r}")
        self.reason = reason


def time_of_day_ms(text: str) -> int | None:
    """`hhmmss[.sss]` -> milliseconds since midnight; a leap second (60) is accepted."""
    text = text.strip()
    if not text:
        return None
    match = _TIME.match(text)
    if match is None:
        raise FieldError("bad_time", text)
    hours, minutes = int(match[1]), int(match[2])
    seconds = float(match[3])
    if hours > 23 or minutes > 59 or seconds >= 61.0:
        raise FieldError("bad_time", text)
    return (hours * 3600 + minutes * 60) * 1000 + round(seconds * 1000)


def century_year(two_digits: int) -> int:
    """Two-digit NMEA year -> four digits (80..99 -> 19xx, else 20xx)."""
    return 1900 + two_digits if two_digits >= 80 else 2000 + two_digits


def rmc_date(text: str) -> date | None:
    """`ddmmyy` -> date."""
    text = text.strip()
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise FieldError("bad_date", text)
    try:
        return date(century_year(int(text[4:])), int(text[2:4]), int(text[:2]))
    except ValueError as err:
        raise FieldError("bad_date", text) from err


def zda_date(day: str, month: str, year: str) -> date | None:
    if not (day.strip() and month.strip() and year.strip()):
        return None
    try:
        y = int(year)
        if y < 100:
            y = century_year(y)
        return date(y, int(month), int(day))
    except ValueError as err:
        raise FieldError("bad_date", f"{day},{month},{year}") from err


def angle(text: str, hemisphere: str, positive: str, negative: str, limit: float) -> float | None:
    """`dddmm.mmmm` plus hemisphere -> signed degrees; None when the field is empty."""
    text = text.strip()
    hemisphere = hemisphere.strip().upper()
    if not text:
        return None
    match = _ANGLE.match(text)
    if match is None or hemisphere not in (positive, negative):
        raise FieldError("bad_position", f"{text},{hemisphere}")
    minutes = float(match[2])
    value = int(match[1]) + minutes / 60.0
    if minutes >= 60.0 or value > limit:
        raise FieldError("bad_position", f"{text},{hemisphere}")
    return -value if hemisphere == negative else value


def decimals(text: str) -> int:
    """Digits after the decimal point: a measure of a coordinate's precision."""
    dot = text.find(".")
    return 0 if dot < 0 else len(text) - dot - 1


def number(text: str) -> float | None:
    """A finite decimal number, or None if empty."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as err:
        raise FieldError("bad_field", text) from err
    if not math.isfinite(value) or "x" in text.lower():
        raise FieldError("bad_field", text)
    return value


def integer(text: str) -> int | None:
    value = number(text)
    if value is None:
        return None
    if value != int(value):
        raise FieldError("bad_field", text)
    return int(value)


def optional(text: str, issues: list[str]) -> float | None:
    """An optional number: malformed reads as missing, with `bad_field` noted in `issues`."""
    try:
        return number(text)
    except FieldError as err:
        issues.append(err.reason)
        return None


def optional_int(text: str, issues: list[str]) -> int | None:
    try:
        return integer(text)
    except FieldError as err:
        issues.append(err.reason)
        return None
