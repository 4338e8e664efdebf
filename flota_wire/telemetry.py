"""Telemetry batches, version 1: a compact bit-packed, column-wise, delta-coded encoding.

Layout (normative description in docs/wire-protocol.md, section "Telemetry batch"):
one header byte (version, deflate flag, type), then a bitstream holding the batch header, the
presence of optional fields, and one column per field. Each column is predicted (previous
value, or linear extrapolation from the two previous ones), its residuals zigzag-mapped and
written as Exp-Golomb codes whose order the encoder picks per column. Nothing is rounded: the
decoder returns exactly the integers that were encoded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate

from flota_wire.bits import (
    MAX_CODE_BITS,
    MAX_EG_ORDER,
    SENTINEL,
    BitWriter,
    best_eg_order,
    read_column,
    read_n,
    table_for,
    zigzag,
)
from flota_wire.deflate import deflate_if_smaller, inflate
from flota_wire.envelope import check_envelope
from flota_wire.errors import WireError
from flota_wire.limits import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    MAX_FIXES_PER_BATCH,
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
)
from flota_wire.schema import Fix, TelemetryBatch, VehicleRef

TYPE_TELEMETRY = 1
DEFLATE_FLAG = 0x08
HEADER_PLAIN = (SCHEMA_VERSION << 4) | TYPE_TELEMETRY  # 0x11
HEADER_DEFLATE = HEADER_PLAIN | DEFLATE_FLAG  # 0x19
DEFLATE_MIN_BODY = 48
"""Bodies shorter than this are never worth a deflate attempt (measured: never smaller)."""

OPTIONAL_FIELDS = ("alt_dm", "speed_cmps", "track_cdeg", "hdop_c", "sats")
_TRACK_MOD = 36000
_LON_LO = -180_000_000
_LON_MOD = 360_000_000
_MAX_TIME_EXP = 6
_K0_POSITION = 27
_K0 = {"alt_dm": 11, "speed_cmps": 11, "track_cdeg": 16, "hdop_c": 8, "sats": 5}
"""Exp-Golomb order of each column's first (absolute) value, fitted to typical magnitudes:
e.g. |lat|, |lon| < 67 degrees cost 28 bits, a course always 17 bits, 4..15 satellites 6."""

PRESENCE_NONE, PRESENCE_ALL, PRESENCE_MIXED = 0, 1, 2


@dataclass(slots=True)
class TelemetryColumns:
    """A decoded batch, column-wise (what the cloud's bulk writers want; no per-fix objects).
    Not frozen: it is a fresh result that holds lists, and building it is on the hot path."""

    seq: list[int]
    time_us: list[int]
    lat_e6: list[int]
    lon_e6: list[int]
    fix_mode: list[int]
    alt_dm: list[int | None]
    speed_cmps: list[int | None]
    track_cdeg: list[int | None]
    hdop_c: list[int | None]
    sats: list[int | None]

    def __len__(self) -> int:
        return len(self.seq)

    def fixes(self) -> tuple[Fix, ...]:
        return tuple(
            map(
                Fix,
                self.seq,
                self.time_us,
                self.lat_e6,
                self.lon_e6,
                self.fix_mode,
                self.alt_dm,
                self.speed_cmps,
                self.track_cdeg,
                self.hdop_c,
                self.sats,
            )
        )


# ---------------------------------------------------------------------------- encoding


def _residuals(values: list[int], order: int, mod: int, lo: int) -> list[int]:
    """Zigzagged residuals of values[1:] against the predictor of ``order``."""
    out = []
    half = mod >> 1
    for j in range(1, len(values)):
        prev = values[j - 1]
        pred = prev if order == 0 or j == 1 else 2 * prev - values[j - 2]
        r = values[j] - pred
        if mod:
            r = (r + half) % mod - half
        out.append(zigzag(r))
    return out


def _write_column(w: BitWriter, raw: list[int]) -> None:
    """U(4) c, then EG(c-1) per value; c = 0 means every value is zero."""
    if not any(raw):
        w.u(0, 4)
        return
    k = best_eg_order(raw, MAX_EG_ORDER)[0]
    w.u(k + 1, 4)
    w.eg_many(raw, k)


def _write_predicted(w: BitWriter, values: list[int], k0: int, mod: int = 0, lo: int = 0) -> None:
    """First value as EG(k0) of its zigzag, then (if more) U(1) order [, U(1) wrap], and the
    residual column."""
    w.eg(zigzag(values[0]), k0)
    if len(values) == 1:
        return
    wrap_ok = bool(mod) and min(values) >= lo and max(values) < lo + mod
    best: tuple[int, int, int, list[int]] | None = None
    for wrap in (0, 1) if wrap_ok else (0,):
        for order in (0, 1):
            raw = _residuals(values, order, mod if wrap else 0, lo)
            cost = best_eg_order(raw, MAX_EG_ORDER)[1] if any(raw) else 0
            if best is None or cost < best[0]:
                best = (cost, order, wrap, raw)
    assert best is not None
    _, order, wrap, raw = best
    w.u(order, 1)
    if mod:
        w.u(wrap, 1)
    _write_column(w, raw)


def _check_range(name: str, values: Sequence[int], lo: int, hi: int) -> None:
    if any(type(v) is not int for v in values):
        raise WireError(f"{name} must be integers (use Fix.from_si to convert SI floats)")
    if values and (min(values) < lo or max(values) > hi):
        raise WireError(f"{name} outside [{lo}, {hi}]")


def _time_exponent(times: list[int]) -> int:
    exp = 0
    while exp < _MAX_TIME_EXP and all(t % 10 ** (exp + 1) == 0 for t in times):
        exp += 1
    return exp


def encode_telemetry(fixes: Sequence[Fix] | TelemetryBatch, *, deflate: bool = True) -> bytes:
    """Encode 1..MAX_FIXES_PER_BATCH fixes of one vehicle (strictly increasing seq).

    With ``deflate`` the body is also raw-deflated and the smaller form is sent.
    Raises WireError for fixes the contract cannot carry (see the spec's value domains).
    """
    if isinstance(fixes, TelemetryBatch):
        fixes = fixes.fixes
    n = len(fixes)
    if not 1 <= n <= MAX_FIXES_PER_BATCH:
        raise WireError(f"a batch holds 1..{MAX_FIXES_PER_BATCH} fixes, not {n}")
    seqs = [f.seq for f in fixes]
    times = [f.time_us for f in fixes]
    lats = [f.lat_e6 for f in fixes]
    lons = [f.lon_e6 for f in fixes]
    modes = [f.fix_mode for f in fixes]
    _check_range("seq", seqs, 0, INT64_MAX)
    _check_range("time_us", times, 0, INT64_MAX)
    _check_range("lat_e6", lats, INT32_MIN, INT32_MAX)
    _check_range("lon_e6", lons, INT32_MIN, INT32_MAX)
    if any(type(m) is not int or m not in (2, 3) for m in modes):
        raise WireError("fix_mode must be 2 or 3")
    seq_deltas = [seqs[i] - seqs[i - 1] - 1 for i in range(1, n)]
    if seq_deltas and min(seq_deltas) < 0:
        raise WireError("seq must strictly increase within a batch")

    w = BitWriter()
    w.n(n - 1)
    w.n(seqs[0])
    consecutive = not any(seq_deltas)
    w.u(int(consecutive), 1)
    exp = _time_exponent(times)
    unit = 10**exp
    units = [t // unit for t in times]
    deltas = [units[i] - units[i - 1] for i in range(1, n)]
    nominal = Counter(deltas).most_common(1)[0][0] if deltas else 0
    nominal = max(nominal, 0)
    w.u(exp, 3)
    w.n(units[0])
    w.n(nominal)
    all_3d = all(m == 3 for m in modes)
    w.u(int(all_3d), 1)
    if not all_3d:
        for m in modes:
            w.u(m - 2, 1)

    optional: list[list[int]] = []
    for name in OPTIONAL_FIELDS:
        col = [getattr(f, name) for f in fixes]
        present = [v for v in col if v is not None]
        if not present:
            w.u(PRESENCE_NONE, 2)
        elif len(present) == n:
            w.u(PRESENCE_ALL, 2)
        else:
            w.u(PRESENCE_MIXED, 2)
            for v in col:
                w.u(v is not None, 1)
        _check_range(name, present, INT32_MIN, INT32_MAX)
        optional.append(present)

    if n > 1:
        if not consecutive:
            _write_column(w, seq_deltas)
        _write_column(w, [zigzag(d - nominal) for d in deltas])
    _write_predicted(w, lats, _K0_POSITION)
    _write_predicted(w, lons, _K0_POSITION, _LON_MOD, _LON_LO)
    for name, present in zip(OPTIONAL_FIELDS, optional, strict=True):
        if present:
            if name == "track_cdeg":
                _write_predicted(w, present, _K0["track_cdeg"], _TRACK_MOD, 0)
            else:
                _write_predicted(w, present, _K0[name])
    body = w.to_bytes()
    out = bytes((HEADER_PLAIN,)) + body
    if deflate and len(body) >= DEFLATE_MIN_BODY:
        packed = deflate_if_smaller(body)
        if packed is not None:
            out = bytes((HEADER_DEFLATE,)) + packed
    if len(out) > MAX_PAYLOAD_BYTES:
        raise WireError(f"encoded batch is {len(out)} bytes > {MAX_PAYLOAD_BYTES}")
    return out


# ---------------------------------------------------------------------------- decoding


def _predicted(
    bits: str, p: int, end: int, count: int, k0: int, mod: int = 0, lo: int = 0
) -> tuple[list[int], int]:
    """A predicted column: first value, order, [wrap], residuals; values rebuilt in C
    (itertools.accumulate) except for the rare wrapped columns."""
    q = bits.find("1", p)  # the first value: EG(k0) of its zigzag
    e = q + q - p + k0 + 1
    if e - q > MAX_CODE_BITS:
        raise WireError("corrupt: Exp-Golomb code too long")
    u = int(bits[q:e], 2) - (1 << k0)
    p = e
    first = (u >> 1) ^ -(u & 1)
    if count == 1:
        return [first], p
    if p > end:
        raise WireError("truncated: payload ends inside a column")
    if mod:  # U(1) order, U(1) wrap, U(4) c
        head = int(bits[p : p + 6], 2)
        p += 6
        order, wrap, c = head >> 5, head & 16, head & 15
    else:  # U(1) order, U(4) c
        head = int(bits[p : p + 5], 2)
        p += 5
        order, wrap, c = head >> 4, 0, head & 15
    if not c:
        return [first] * count, p  # zero residuals under either predictor: constant
    get = _GETS.get(c) or _getter(c)
    res: list[int] = []
    append = res.append
    for _ in range(count - 1):  # the decoder's hot loop: one table lookup per short code
        hit = get(bits[p : p + 12])
        if hit is None:
            q = bits.find("1", p)
            e = q + q - p + c
            if e - q > MAX_CODE_BITS:
                raise WireError("corrupt: Exp-Golomb code too long")
            u = int(bits[q:e], 2) - (1 << (c - 1))
            append((u >> 1) ^ -(u & 1))
            p = e
        else:
            append(hit[0])
            p += hit[1]
    if not wrap:
        if order:
            return list(accumulate(accumulate(res), initial=first)), p
        return list(accumulate(res, initial=first)), p
    out = [first]
    append = out.append
    prev = pprev = first
    for j, d in enumerate(res):
        pred = 2 * prev - pprev if order and j else prev
        pprev = prev
        prev = (pred + d - lo) % mod + lo
        append(prev)
    return out, p


_SENTINEL_BITS = len(SENTINEL)
_SENTINEL_MASK = (1 << _SENTINEL_BITS) - 1


_GETS: dict[int, Callable[[str], tuple[int, int] | None]] = {}


def _getter(c: int) -> Callable[[str], tuple[int, int] | None]:
    get = _GETS[c] = table_for(c - 1).get
    return get


_OPTIONAL_COLUMNS = tuple(
    (_K0[name], _TRACK_MOD if name == "track_cdeg" else 0, 0) for name in OPTIONAL_FIELDS
)
"""(first-value order, modulus, low end) of each optional column, in OPTIONAL_FIELDS order."""
_PRESENCE_FAST = {
    "".join(format(f, "02b") for f in flags): flags
    for flags in ((a, b, c, d, e) for a in (0, 1) for b in (0, 1) for c in (0, 1) for d in (0, 1)
                  for e in (0, 1))
}  # fmt: skip


_BYTES_TYPES = (bytes, bytearray, memoryview)


def _body(payload: bytes) -> bytes:
    head = check_envelope(payload, TYPE_TELEMETRY)
    body = bytes(payload[1:])
    return inflate(body) if head & DEFLATE_FLAG else body


def decode_telemetry_columns(payload: bytes) -> TelemetryColumns:
    """Decode a telemetry payload into columns; any defect raises WireError."""
    body = _body(payload)
    end = 8 * len(body)
    marker = 1 << (end + _SENTINEL_BITS)
    bits = bin((int.from_bytes(body, "big") << _SENTINEL_BITS) | _SENTINEL_MASK | marker)
    bits = bits[3:]  # "0b1" off; what is left: the body's bits, then the sentinel
    try:
        return _decode_bits(bits, end)
    except WireError:
        raise
    except (ValueError, IndexError) as err:  # a code ran past the end and the sentinel
        raise WireError("truncated or corrupt: a code runs past the end") from err


def _decode_bits(bits: str, end: int) -> TelemetryColumns:
    n, p = read_n(bits, 0)
    n += 1
    if n > MAX_FIXES_PER_BATCH:
        raise WireError(f"oversized: {n} fixes > {MAX_FIXES_PER_BATCH}")
    seq0, p = read_n(bits, p)
    if p > end:
        raise WireError("truncated: payload ends inside the batch header")
    consecutive = bits[p] == "1"
    exp = int(bits[p + 1 : p + 4], 2)
    p += 4
    if exp > _MAX_TIME_EXP:
        raise WireError(f"corrupt: time unit exponent {exp} > {_MAX_TIME_EXP}")
    unit = 10**exp
    t0, p = read_n(bits, p)
    nominal, p = read_n(bits, p)
    if p >= end:
        raise WireError("truncated: payload ends inside the batch header")
    if bits[p] == "1":
        modes = [3] * n
        p += 1
    else:
        modes = [2 + (c == "1") for c in bits[p + 1 : p + 1 + n]]
        p += 1 + n
    fast = _PRESENCE_FAST.get(bits[p : p + 10])
    presence: list[list[bool] | None]
    if fast is not None:  # no field mixed: five codes of 0 or 1
        p += 10
        presence = [None] * 5
        counts = [n * flag for flag in fast]
    else:
        presence, counts, p = _presence(bits, p, end, n)
    if n > 1:
        if consecutive:
            seqs = list(range(seq0, seq0 + n))
        else:
            raw, p = read_column(bits, p, n - 1)
            seqs = [seq0]
            s = seq0
            for d in raw:
                s += d + 1
                seqs.append(s)
        raw, p = read_column(bits, p, n - 1)
        times = [t0 * unit]
        t = t0
        if any(raw):
            for dv in raw:
                t += nominal + ((dv >> 1) ^ -(dv & 1))
                times.append(t * unit)
        else:
            step = nominal * unit
            times = list(range(t0 * unit, t0 * unit + n * step, step)) if step else times * n
    else:
        seqs = [seq0]
        times = [t0 * unit]
    lats, p = _predicted(bits, p, end, n, _K0_POSITION)
    lons, p = _predicted(bits, p, end, n, _K0_POSITION, _LON_MOD, _LON_LO)
    columns: list[list[int | None]] = []
    checked = [lats, lons]
    for (k0, mod, lo), pmask, count in zip(_OPTIONAL_COLUMNS, presence, counts, strict=True):
        if count == 0:
            columns.append([None] * n)
            continue
        vals, p = _predicted(bits, p, end, count, k0, mod, lo)
        checked.append(vals)
        if pmask is None:
            columns.append(vals)  # type: ignore[arg-type]
        else:
            it = iter(vals)
            columns.append([next(it) if m else None for m in pmask])
    if p > end:
        raise WireError("truncated: payload ends inside a field")
    if end - p >= 8:
        raise WireError(f"trailing garbage: {(end - p) // 8} byte(s) after the last field")
    if bits.find("1", p, end) >= 0:
        raise WireError("corrupt: non-zero padding bits")
    if seqs[-1] > INT64_MAX:
        raise WireError("corrupt: decoded seq beyond 2**63 - 1")
    if min(times) < 0 or max(times) > INT64_MAX:
        raise WireError("corrupt: decoded time_us outside [0, 2**63 - 1]")
    if min(map(min, checked)) < INT32_MIN or max(map(max, checked)) > INT32_MAX:
        raise WireError("corrupt: a decoded position or optional field is outside int32")
    alt, speed, track, hdop, sats = columns
    return TelemetryColumns(seqs, times, lats, lons, modes, alt, speed, track, hdop, sats)


def _presence(
    bits: str, p: int, end: int, n: int
) -> tuple[list[list[bool] | None], list[int], int]:
    """The general presence section (some field mixed): codes and bitmaps in turn."""
    presence: list[list[bool] | None] = []
    counts = []
    for _ in OPTIONAL_FIELDS:
        code = int(bits[p : p + 2], 2)
        p += 2
        if code == PRESENCE_NONE:
            presence.append(None)
            counts.append(0)
        elif code == PRESENCE_ALL:
            presence.append(None)
            counts.append(n)
        elif code == PRESENCE_MIXED:
            mask = [c == "1" for c in bits[p : p + n]]
            p += n
            presence.append(mask)
            counts.append(sum(mask))
        else:
            raise WireError("corrupt: presence code 3 is reserved")
        if p > end:
            raise WireError("truncated: payload ends inside the batch header")
    return presence, counts, p


def decode_telemetry(payload: bytes, vehicle: VehicleRef) -> TelemetryBatch:
    """Decode a telemetry payload of ``vehicle`` (known from the topic) into fixes."""
    return TelemetryBatch(vehicle=vehicle, fixes=decode_telemetry_columns(payload).fixes())
