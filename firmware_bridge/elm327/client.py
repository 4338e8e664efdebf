"""ELM327 client: sends a command, reads to the '>' prompt, decodes the answer.

Set-up follows the datasheet: ATZ (reset; the answer names the chip), ATE0 (echo off), ATL0
(no line feeds), ATS0 (no spaces), ATH1 (headers on, so answers of several ECUs and ISO-TP
frames can be told apart), ATSP0 (automatic protocol search), then a 0100 request to make the
adapter search, and ATDPN to learn which protocol it found.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import serial

from firmware_bridge.elm327 import pids as pid_table
from firmware_bridge.elm327.dtc import decode_mode03
from firmware_bridge.elm327.response import BusProtocol, clean_lines, messages, parse_dpn
from firmware_bridge.errors import (
    Elm327Error,
    Elm327TimeoutError,
    LinkError,
    NoDataError,
    ResponseError,
)
from firmware_bridge.records import Dtc, ObdReading

log = logging.getLogger(__name__)
INIT_COMMANDS = ("ATE0", "ATL0", "ATS0", "ATH1", "ATSP0")


class Elm327Client:
    """One adapter on one serial port (any pyserial URL)."""

    def __init__(
        self,
        port: str,
        baudrate: int = 38_400,
        *,
        timeout_s: float = 5.0,
        reset_timeout_s: float = 5.0,
        opener: Callable[..., Any] = serial.serial_for_url,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.port_name = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.reset_timeout_s = reset_timeout_s
        self._opener = opener
        self._clock = clock
        self._port: Any = None
        self.version = ""
        self.protocol: BusProtocol | None = None
        self.supported: set[int] = set()
        self.headers = True
        self.counts: Counter[str] = Counter()

    # -- transport ------------------------------------------------------------------------
    def open(self) -> None:
        try:
            self._port = self._opener(self.port_name, baudrate=self.baudrate, timeout=0.05)
        except (serial.SerialException, OSError) as err:
            raise LinkError(f"cannot open {self.port_name}: {err}") from err

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> Elm327Client:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def command(self, cmd: str, timeout_s: float | None = None) -> str:
        """Send one command and return the raw text up to (not including) the '>' prompt."""
        if self._port is None:
            raise LinkError("port not open")
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            self._port.reset_input_buffer()  # a late answer of a timed-out command
            self._port.write(cmd.encode("ascii") + b"\r")
            buf = bytearray()
            deadline = time.monotonic() + limit
            while b">" not in buf:
                if time.monotonic() >= deadline:
                    self.counts["timeout"] += 1
                    raise Elm327TimeoutError(f"{cmd}: no prompt after {limit} s ({bytes(buf)!r})")
                buf += self._port.read(self._port.in_waiting or 1)
        except (serial.SerialException, OSError) as err:
            raise LinkError(f"{self.port_name}: {err}") from err
        return buf[: buf.index(b">")].decode("ascii", errors="replace")

    def _lines(self, cmd: str, timeout_s: float | None = None) -> list[str]:
        try:
            return clean_lines(self.command(cmd, timeout_s), cmd)
        except Elm327Error as err:
            self.counts[type(err).__name__] += 1
            raise

    # -- set-up ---------------------------------------------------------------------------
    def initialise(self) -> BusProtocol:
        """Reset and configure the adapter, let it find the vehicle's protocol, learn PIDs."""
        text = self.command("ATZ", self.reset_timeout_s)
        self.version = next((ln.strip() for ln in text.splitlines() if "ELM" in ln.upper()), "")
        for cmd in INIT_COMMANDS:
            self._lines(cmd)
        self.headers = True
        self.protocol = None
        self._lines("0100")  # under ATSP0 this makes the adapter search ("SEARCHING...")
        self.protocol = parse_dpn(" ".join(self._lines("ATDPN")))
        self.supported = self.discover_pids()
        return self.protocol

    def discover_pids(self) -> set[int]:
        """Mode 01 PIDs the vehicle supports (0100, then 0120 ... while the last bit is set)."""
        found: set[int] = set()
        for base in pid_table.SUPPORT_PIDS:
            if base and base not in found:
                break
            try:
                answers = self._answers(f"01{base:02X}", self._proto_or_can())
            except NoDataError:
                break
            for payload in answers.values():
                found |= pid_table.decode_support(base, payload)
        return found

    def _proto_or_can(self) -> BusProtocol:
        if self.protocol is None:
            raise Elm327Error("initialise() first: the bus protocol is not known")
        return self.protocol

    def _answers(self, cmd: str, protocol: BusProtocol) -> dict[str, bytes]:
        lines = self._lines(cmd)
        per_ecu = messages(lines, protocol, self.headers)
        out: dict[str, bytes] = {}
        for ecu, msgs in per_ecu.items():
            if msgs:
                out[ecu] = msgs[0] if protocol.is_can else b"".join(msgs)
        return out

    # -- queries --------------------------------------------------------------------------
    def read_pid(self, pid: int) -> list[ObdReading]:
        """One mode 01 PID from every ECU that answers; NoDataError if none does."""
        protocol = self._proto_or_can()
        answers = self._answers(f"01{pid:02X}", protocol)
        now = self._clock()
        out = []
        for ecu, payload in answers.items():
            try:
                r = pid_table.decode_reading(pid, payload, ecu)
            except ResponseError as err:
                self.counts["bad_answer"] += 1
                log.debug("%s", err)
                continue
            out.append(ObdReading(r.pid, r.name, r.value, r.unit, r.ecu, now))
        if not out:
            raise ResponseError(f"no decodable answer to 01{pid:02X}")
        return out

    def poll(self, wanted: Iterable[int] = tuple(pid_table.PIDS)) -> list[ObdReading]:
        """Read every wanted PID the vehicle supports; a PID that fails is counted, skipped."""
        out: list[ObdReading] = []
        for pid in wanted:
            if self.supported and pid not in self.supported:
                continue
            try:
                out.extend(self.read_pid(pid))
            except (NoDataError, ResponseError) as err:
                self.counts[f"pid_{pid:02X}_failed"] += 1
                log.debug("PID %02X: %s", pid, err)
        return out

    def read_dtcs(self) -> list[Dtc]:
        """Stored trouble codes (mode 03) of every ECU; [] when there are none."""
        protocol = self._proto_or_can()
        try:
            lines = self._lines("03")
        except NoDataError:
            return []
        codes: list[Dtc] = []
        for ecu, msgs in messages(lines, protocol, self.headers).items():
            for payload in msgs:
                codes.extend(decode_mode03(payload, protocol.is_can, ecu))
        return codes

    def read_vin(self) -> str:
        """The vehicle identification number (mode 09 PID 02), ISO-TP multi-frame on CAN."""
        answers = self._answers("0902", self._proto_or_can())
        for payload in answers.values():
            if len(payload) >= 3 and payload[0] == 0x49 and payload[1] == 0x02:
                text = payload[3:].decode("ascii", errors="replace")
                return "".join(ch for ch in text if ch.isalnum())
        raise ResponseError("no VIN in the answer to 0902")
