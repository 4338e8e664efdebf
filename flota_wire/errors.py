"""The one error type of the wire contract.

Anything that cannot be decoded (corrupt, truncated, oversized, wrong version, trailing bytes)
raises :class:`WireError` and nothing else, so a receiver needs exactly one ``except`` to count,
log and quarantine bad input.
"""

from __future__ import annotations


class WireError(ValueError):
    """A payload, topic or value outside the wire contract. Never retriable: the bytes are bad."""

    retriable = False
