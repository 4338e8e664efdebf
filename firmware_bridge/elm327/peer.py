"""A scripted ELM327 on a pseudo-terminal, speaking the adapter's real text protocol.

Behaves as the datasheet describes: echo on after reset, CR line endings (CR LF with ATL1),
spaces between bytes unless ATS0, headers only with ATH1, "SEARCHING..." before the first
answer under ATSP0, "NO DATA" for PIDs the vehicle lacks, "?" for unknown commands, ISO-TP
multi-frame answers on CAN, and "UNABLE TO CONNECT" or "BUS INIT: ...ERROR" with the ignition
off. Not a copy of any emulator: written from the datasheet for our tests and the demo.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from dataclasses import dataclass, field


@dataclass
class Vehicle:
    """What the car answers. `pids` maps a mode 01 PID to its data bytes."""

    protocol: int = 6  # 6: CAN 11 bit 500k; 7: CAN 29 bit; 3: ISO 9141-2
    pids: dict[int, bytes] = field(
        default_factory=lambda: {
            0x04: bytes([0x80]),  # load 50.2 %
            0x05: bytes([0x5A]),  # coolant 50 degC
            0x0C: bytes([0x1A, 0xF8]),  # 1726 rpm
            0x0D: bytes([0x48]),  # 72 km/h
            0x11: bytes([0x33]),  # throttle 20 %
            0x2F: bytes([0xBF]),  # fuel 74.9 %
        }
    )
    dtcs: list[int] = field(default_factory=lambda: [0x0133, 0x0300, 0xC123, 0x4217])
    vin: str = "1D4GP00R55B123456"
    ignition: bool = True
    second_ecu: bool = False  # a transmission ECU (7E9) also answers 0100


class Elm327Peer:
    """Runs in a thread; `path` is the slave side for the client to open."""

    def __init__(self, vehicle: Vehicle | None = None, version: str = "ELM327 v1.5") -> None:
        self.vehicle = vehicle or Vehicle()
        self.version = version
        self.script: dict[str, str] = {}  # command -> raw answer text, overrides everything
        self.silent: set[str] = set()  # commands never answered (for timeouts)
        self.received: list[str] = []
        self._reset_state()
        self._stop = threading.Event()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._run, name="elm327-peer", daemon=True)

    def _reset_state(self) -> None:
        self.echo = True
        self.linefeed = True
        self.spaces = True
        self.headers = False
        self.searched = False
        self.protocol_auto = True

    def start(self) -> Elm327Peer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._master)
        os.close(self._slave)

    def __enter__(self) -> Elm327Peer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            try:
                buf += os.read(self._master, 1024)
            except OSError:
                continue
            while b"\r" in buf:
                raw, buf = buf.split(b"\r", 1)
                self._handle(raw.decode("ascii", errors="replace"))

    # -- answering ------------------------------------------------------------------------
    def _eol(self) -> str:
        return "\r\n" if self.linefeed else "\r"

    def _send(self, raw_cmd: str, lines: list[str]) -> None:
        out = (raw_cmd + self._eol()) if self.echo else ""
        out += "".join(ln + self._eol() for ln in lines) + self._eol() + ">"
        os.write(self._master, out.encode("ascii"))

    def _handle(self, raw_cmd: str) -> None:
        cmd = raw_cmd.strip().replace(" ", "").upper()
        self.received.append(cmd)
        if cmd in self.silent:
            return
        if cmd in self.script:
            echo = (raw_cmd + self._eol()) if self.echo else ""
            os.write(self._master, (echo + self.script[cmd] + ">").encode("ascii"))
            return
        if cmd.startswith("AT"):
            self._send(raw_cmd, self._at(cmd[2:]))
        elif cmd and all(c in "0123456789ABCDEF" for c in cmd) and len(cmd) % 2 == 0:
            self._send(raw_cmd, self._obd(bytes.fromhex(cmd)))
        else:
            self._send(raw_cmd, ["?"])

    def _at(self, a: str) -> list[str]:
        if a in ("Z", "WS"):
            self._reset_state()
            return ["", self.version]
        if a == "I":
            return [self.version]
        flags = {"E": "echo", "L": "linefeed", "S": "spaces", "H": "headers"}
        if len(a) == 2 and a[0] in flags and a[1] in "01":
            setattr(self, flags[a[0]], a[1] == "1")
            return ["OK"]
        if a.startswith("SP") and len(a) == 3:
            self.protocol_auto = a[2] == "0"
            self.searched = False
            return ["OK"]
        if a == "DPN":
            p = f"{self.vehicle.protocol:X}"
            return [("A" + p) if self.protocol_auto else p] if self.searched else ["0"]
        if a == "DP":
            return ["AUTO, ISO 15765-4 (CAN 11/500)"]
        if a == "RV":
            return ["12.6V"]
        return ["?"]

    def _obd(self, req: bytes) -> list[str]:
        v = self.vehicle
        lines: list[str] = []
        if self.protocol_auto and not self.searched:
            lines.append("SEARCHING...")
        if not v.ignition:
            if v.protocol < 6:
                return ["BUS INIT: ...ERROR"]
            return [*lines, "UNABLE TO CONNECT"]
        if v.protocol < 6 and not self.searched:
            lines = ["BUS INIT: ...OK"]
        self.searched = True
        answers = self._answers(req)
        if not answers:
            return [*lines, "NO DATA"]
        for ecu, payload in answers:
            lines.extend(self._frames(ecu, payload))
        return lines

    def _answers(self, req: bytes) -> list[tuple[int, bytes]]:
        v = self.vehicle
        mode = req[0]
        if mode == 0x01 and len(req) == 2:
            pid = req[1]
            if pid % 0x20 == 0:
                present = set(v.pids) | {p for p in range(0x20, 0xE1, 0x20) if p < max(v.pids)}
                bits = sum(1 << (31 - (p - pid - 1)) for p in present if pid < p <= pid + 32)
                if pid and not any(pid < p <= pid + 32 for p in present):
                    return []
                out = [(0x7E8, bytes([0x41, pid]) + bits.to_bytes(4, "big"))]
                if v.second_ecu and pid == 0:
                    out.append((0x7E9, bytes([0x41, 0x00, 0x80, 0x00, 0x00, 0x01])))
                return out
            if pid in v.pids:
                return [(0x7E8, bytes([0x41, pid]) + v.pids[pid])]
            return []
        if mode == 0x03 and len(req) == 1:
            body = b"".join(c.to_bytes(2, "big") for c in v.dtcs)
            if v.protocol >= 6:
                return [(0x7E8, bytes([0x43, len(v.dtcs)]) + body)]
            chunks = [body[i : i + 6].ljust(6, b"\0") for i in range(0, max(len(body), 1), 6)]
            return [(0x7E8, bytes([0x43]) + c) for c in chunks]
        if req == b"\x09\x02":
            return [(0x7E8, b"\x49\x02\x01" + v.vin.encode("ascii"))]
        return []

    def _frames(self, ecu: int, payload: bytes) -> list[str]:
        v = self.vehicle
        if v.protocol < 6:  # legacy: 3 header bytes, data, checksum; headers off: data only
            head = bytes([0x48, 0x6B, 0x10])
            body = head + payload
            frame = body + bytes([sum(body) & 0xFF]) if self.headers else payload
            return [self._hex(frame)]
        # 29-bit ids carry the ECU address: 7E8 is address 10, 7E9 is 18.
        address = 0x10 + (ecu - 0x7E8) * 8
        header = f"18DAF1{address:02X}" if v.protocol in (7, 9) else f"{ecu:03X}"
        if len(payload) <= 7:
            if not self.headers:
                return [self._hex(payload)]
            data = bytes([len(payload)]) + payload
            return [self._join(header, self._hex(data.ljust(8, b"\0")))]
        chunks = [bytes([0x10 | len(payload) >> 8, len(payload) & 0xFF]) + payload[:6]]
        rest = payload[6:]
        index = 1
        while rest:
            chunks.append(bytes([0x20 | index & 0xF]) + rest[:7].ljust(7, b"\0"))
            rest = rest[7:]
            index += 1
        if not self.headers:
            first = [f"{len(payload):03X}", f"0:{self._sp()}{self._hex(payload[:6])}"]
            numbered = [
                f"{i & 0xF:X}:{self._sp()}{self._hex(c[1:])}" for i, c in enumerate(chunks[1:], 1)
            ]
            return first + numbered
        return [self._join(header, self._hex(c)) for c in chunks]

    def _sp(self) -> str:
        return " " if self.spaces else ""

    def _hex(self, data: bytes) -> str:
        return self._sp().join(f"{b:02X}" for b in data)

    def _join(self, header: str, data: str) -> str:
        return header + self._sp() + data
