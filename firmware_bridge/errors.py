"""Exceptions of the firmware bridge, one hierarchy with a `retriable` flag.

Bad input on a link is counted and dropped, never raised out of a read loop; these types are
for callers that ask for one thing (a PID, a frame decode) and must know whether to try again.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every firmware-bridge error."""

    retriable: bool = False


class FrameError(BridgeError):
    """One received frame is unusable; `reason` is the counter it goes to."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class PayloadError(FrameError):
    """A frame whose header and CRC are fine but whose payload does not fit its type."""

    def __init__(self, detail: str) -> None:
        super().__init__("malformed", detail)


class LinkError(BridgeError):
    """The serial port is gone or cannot be opened; reopening later may work."""

    retriable = True


class Elm327Error(BridgeError):
    """An ELM327 adapter refused or failed a command."""


class Elm327TimeoutError(Elm327Error):
    """No '>' prompt within the timeout."""

    retriable = True


class NoDataError(Elm327Error):
    """The adapter answered NO DATA: the ECU does not support or did not answer the request."""


class BusError(Elm327Error):
    """UNABLE TO CONNECT, BUS INIT ...ERROR, CAN ERROR and kin: the bus is not reachable now
    (ignition off, wrong protocol); retry later."""

    retriable = True


class UnknownCommandError(Elm327Error):
    """The adapter answered '?': it does not understand the command."""


class ResponseError(Elm327Error):
    """An answer that cannot be decoded (wrong mode byte, short data, bad ISO-TP sequence)."""
