"""Errors of the GPS layer. `retriable` tells a caller whether trying again can help."""

from __future__ import annotations


class GpsError(Exception):
    """Base of every GPS-layer error."""

    retriable: bool = False


class GpsSourceError(GpsError):
    """A source (serial port, gpsd socket) failed; reopening it later may work."""

    retriable = True


class GpsConfigError(GpsError):
    """A source was configured with values that can never work."""

    retriable = False
