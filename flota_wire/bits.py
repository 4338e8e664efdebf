"""Bit-level writer and reader for the binary encodings (MSB first).

Codes (the spec in docs/wire-protocol.md names them the same way):

* ``U(k)``: an unsigned integer in exactly k bits.
* ``EG(k)``: Exp-Golomb of order k of an unsigned v: with x = v + 2**k and L = bit length of
  x, write L - k - 1 zero bits, then x in L bits.
* ``N``: a length-prefixed unsigned v < 2**63: U(6) holding L = bit length of v, then the
  L - 1 bits of v below its leading 1 (nothing when L <= 1).
* zigzag maps signed to unsigned: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ...

The readers work on a '0'/'1' string so that scanning (``str.find``) and slicing run in C;
that keeps pure-Python decoding fast and linear in the payload size.
"""

from __future__ import annotations

from flota_wire.errors import WireError


def zigzag(v: int) -> int:
    return (v << 1) if v >= 0 else ((-v) << 1) - 1


def unzigzag(u: int) -> int:
    return (u >> 1) if not u & 1 else -((u + 1) >> 1)


def eg_cost(values: list[int], k: int) -> int:
    """Bits needed to write ``values`` (unsigned) as EG(k)."""
    base = 1 << k
    return sum(2 * (v + base).bit_length() for v in values) - len(values) * (k + 1)


def best_eg_order(values: list[int], max_k: int = 14) -> tuple[int, int]:
    """The Exp-Golomb order in 0..max_k with the fewest bits for these values, and that cost.
    (Orders above the largest value's bit length only cost more.)"""
    best_k, best = 0, eg_cost(values, 0)
    for k in range(1, min(max(values).bit_length(), max_k) + 1):
        cost = eg_cost(values, k)
        if cost < best:
            best_k, best = k, cost
    return best_k, best


class BitWriter:
    """Collects bits as text and packs them once at the end (linear time)."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[str] = []

    def u(self, value: int, k: int) -> None:
        if k:
            if value < 0 or value >> k:
                raise WireError(f"value {value} does not fit in {k} bits")
            self._parts.append(format(value, f"0{k}b"))

    def eg(self, value: int, k: int) -> None:
        x = value + (1 << k)
        b = bin(x)[2:]
        self._parts.append("0" * (len(b) - k - 1) + b)

    def eg_many(self, values: list[int], k: int) -> None:
        base = 1 << k
        parts = self._parts
        for v in values:
            b = bin(v + base)[2:]
            parts.append("0" * (len(b) - k - 1) + b)

    def n(self, value: int) -> None:
        if value < 0 or value.bit_length() > 63:
            raise WireError(f"value {value} outside [0, 2**63)")
        length = value.bit_length()
        self._parts.append(format(length, "06b"))
        if length > 1:
            self._parts.append(bin(value)[3:])

    def to_bytes(self) -> bytes:
        bits = "".join(self._parts)
        pad = -len(bits) % 8
        bits += "0" * pad
        if not bits:
            return b""
        return int(bits, 2).to_bytes(len(bits) // 8, "big")


SENTINEL = "1" * 128
"""Appended to the bit text so that ``str.find`` always succeeds in the hot loops; reading into
it is caught by the end-of-payload check (and any overrun slice by the ValueError guard)."""
MAX_EG_ORDER = 14
MAX_CODE_BITS = 2 * 68 + MAX_EG_ORDER
"""No code of a valid batch is longer: every residual fits in 67 bits (domains are int64)."""


def read_n(bits: str, p: int) -> tuple[int, int]:
    length = int(bits[p : p + 6], 2)
    p += 6
    if length <= 1:
        return length, p
    q = p + length - 1
    return int("1" + bits[p:q], 2), q


_WINDOW = 12
_TABLES: dict[int, dict[str, tuple[int, int]]] = {}


def table_for(k: int) -> dict[str, tuple[int, int]]:
    """For EG(k): every 12-bit window that starts with a whole code -> (signed value, length).
    One dict lookup replaces a scan and a parse for the short codes that dominate."""
    table = _TABLES.get(k)
    if table is None:
        table = {}
        for z in range(_WINDOW):
            length = 2 * z + k + 1
            if length > _WINDOW:
                break
            for x in range(1 << (z + k), 1 << (z + k + 1)):
                u = x - (1 << k)
                code = format(x, f"0{length}b")
                value = (u >> 1) ^ -(u & 1)
                for tail in range(1 << (_WINDOW - length)):
                    key = code + format(tail, f"0{_WINDOW - length}b") if length < _WINDOW else code
                    table[key] = (value, length)
        _TABLES[k] = table
    return table


def read_column(bits: str, p: int, count: int) -> tuple[list[int], int]:
    """U(4) c, then ``count`` EG(c-1) codes (raw, still zigzagged)."""
    c = int(bits[p : p + 4], 2)
    p += 4
    if not c:
        return [0] * count, p
    kk = c  # k + 1
    base = 1 << (c - 1)
    find = bits.find
    out: list[int] = []
    append = out.append
    for _ in range(count):
        q = find("1", p)
        e = q + q - p + kk
        if e - q > MAX_CODE_BITS:
            raise WireError("corrupt: Exp-Golomb code too long")
        append(int(bits[q:e], 2) - base)
        p = e
    return out, p
