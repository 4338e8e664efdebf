"""A small typed adapter over pynmea2, which has no type hints.

pynmea2 splits a sentence, knows the talker/type grammar and names each field; this module
turns that into a `RawSentence` with plain strings, so that nothing else touches pynmea2.
Field values are converted (with range checks) in `observation.py`, not by pynmea2's own
properties, which raise on the malformed values real receivers send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pynmea2

# The sentence types that feed a fix; any talker (GP, GN, GL, GA, GB, BD, GQ, QZ, ...).
FIX_SENTENCES = frozenset({"GGA", "RMC", "GNS", "GLL", "GSA", "VTG", "ZDA", "GST"})

# Every talker sentence type pynmea2 knows: the rest are counted as unknown, not ignored.
_KNOWN_TYPES: frozenset[str] = frozenset(
    str(name) for name in getattr(pynmea2.TalkerSentence, "sentence_types", {})
)


@dataclass(frozen=True, slots=True)
class RawSentence:
    """One checksum-valid sentence: its talker, type and named string fields."""

    address: str  # e.g. "GNGGA" or "PGRME": used to learn a receiver's cycle
    talker: str  # "GP", "GN", ...; "P" + maker for proprietary sentences
    kind: str  # "GGA", ...; "" for proprietary sentences
    fields: dict[str, str]
    extra: tuple[str, ...]  # fields beyond those pynmea2 names (e.g. NMEA 4.1 GSA system id)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


class SentenceError(ValueError):
    """The sentence is not decodable: `reason` is a short counter key."""

    def __init__(self, reason: str, line: str) -> None:
        super().__init__(f"{reason}: {line[:100]!r}")
        self.reason = reason


def split_address(sentence: str) -> str:
    """The address field (`GPGGA`) of a `$GPGGA,...*hh` sentence."""
    comma = sentence.find(",")
    star = sentence.rfind("*")
    end = comma if comma >= 0 else (star if star >= 0 else len(sentence))
    return sentence[1:end]


def decode(sentence: str) -> RawSentence:
    """Decode a framed sentence (`$...*hh`, checksum already verified by the framer).

    Raises SentenceError with reason `proprietary`, `ignored_type`, `unknown_type` or
    `unparseable`; any other exception from pynmea2 is mapped to `unparseable`.
    """
    address = split_address(sentence)
    if address.startswith("P"):
        raise SentenceError("proprietary", sentence)
    if len(address) != 5 or not address.isalnum():
        raise SentenceError("unknown_type", sentence)
    kind = address[2:].upper()
    if kind not in FIX_SENTENCES:
        known = kind in _KNOWN_TYPES
        raise SentenceError("ignored_type" if known else "unknown_type", sentence)
    star = sentence.rfind("*")
    body = sentence[: star if star >= 0 else len(sentence)]
    try:
        message: Any = pynmea2.parse(body)
    except pynmea2.SentenceTypeError as err:
        raise SentenceError("unknown_type", sentence) from err
    except Exception as err:  # pynmea2 raises ValueError, TypeError, ... on bad input
        raise SentenceError("unparseable", sentence) from err
    try:
        data = [str(item) for item in message.data]
        names = [str(field[1]) for field in message.fields]
        talker = str(message.talker)
    except Exception as err:
        raise SentenceError("unparseable", sentence) from err
    fields = dict(zip(names, data, strict=False))
    return RawSentence(
        address=address,
        talker=talker.upper(),
        kind=kind,
        fields=fields,
        extra=tuple(data[len(names) :]),
    )
