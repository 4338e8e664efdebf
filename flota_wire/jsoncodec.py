"""Events, commands, acknowledgements, state and sensor batches, version 1.

These are rare (or, for sensors, bulky but optional), so they use a simple self-describing form:
the header byte (version << 4 | deflate << 3 | type) then a compact UTF-8 JSON object, raw-
deflated when that is smaller. Decoding is strict: exact keys, exact JSON types (a bool is not
an int), ranges checked, unknown keys refused. Anything else raises WireError.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flota_wire.deflate import deflate_if_smaller, inflate
from flota_wire.envelope import check_envelope
from flota_wire.errors import WireError
from flota_wire.limits import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    MAX_JSON_DEPTH,
    MAX_PAYLOAD_BYTES,
    MAX_SAMPLES_PER_BATCH,
    SCHEMA_VERSION,
)
from flota_wire.schema import (
    AckStatus,
    Command,
    CommandAck,
    CommandKind,
    DeviceState,
    Event,
    SensorBatch,
    SensorKind,
    SensorSample,
    Severity,
    StoredAck,
    Stream,
    VehicleRef,
)

TYPE_SENSORS = 2
TYPE_EVENT = 3
TYPE_COMMAND = 4
TYPE_COMMAND_ACK = 5
TYPE_STORED_ACK = 6
TYPE_STATE = 7
DEFLATE_FLAG = 0x08
DEFLATE_MIN_BODY = 64

_KIND = re.compile(r"^[a-z0-9_]{1,32}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TEXT = 256
MAX_DETAILS = 32
MAX_RANGES = 256

Scalar = str | int | float | bool | None


# ------------------------------------------------------------------------------ envelope

_F = TypeVar("_F", bound=Callable[..., bytes])


def _encoder(fn: _F) -> _F:
    """Encoders raise WireError (never a bare TypeError/ValueError) for what v1 cannot carry."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> bytes:
        try:
            return fn(*args, **kwargs)
        except WireError:
            raise
        except (TypeError, ValueError, AttributeError) as err:
            raise WireError(f"{fn.__name__}: not encodable in v1: {err}") from err

    return wrapper  # type: ignore[return-value]


def _wrap(kind: int, obj: dict[str, Any], deflate: bool = True) -> bytes:
    try:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise WireError(f"not encodable as v1 JSON: {err}") from err
    raw = body.encode()
    out = bytes(((SCHEMA_VERSION << 4) | kind,)) + raw
    if deflate and len(raw) >= DEFLATE_MIN_BODY:
        packed = deflate_if_smaller(raw)
        if packed is not None:
            out = bytes(((SCHEMA_VERSION << 4) | DEFLATE_FLAG | kind,)) + packed
    if len(out) > MAX_PAYLOAD_BYTES:
        raise WireError(f"encoded message is {len(out)} bytes > {MAX_PAYLOAD_BYTES}")
    return out


def _reject_constant(name: str) -> Any:
    raise WireError(f"corrupt: {name} is not valid in v1 JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise WireError("corrupt: a JSON object repeats a key")
    return obj


def _unwrap(payload: bytes, kind: int) -> dict[str, Any]:
    head = check_envelope(payload, kind, min_size=3)
    body = bytes(payload[1:])
    if head & DEFLATE_FLAG:
        body = inflate(body)
    try:
        obj = json.loads(
            body.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
        )
    except WireError:
        raise
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, digits
        raise WireError(f"corrupt JSON: {err}") from err
    if not isinstance(obj, dict):
        raise WireError("corrupt: the JSON body must be an object")
    return obj


# ------------------------------------------------------------------------------ field checks


class _Fields:
    """Reads an object's fields once each; ``done()`` refuses any key left over."""

    def __init__(self, obj: dict[str, Any], what: str) -> None:
        self.obj = obj
        self.what = what
        self.seen: set[str] = set()

    def _get(self, key: str, optional: bool) -> Any:
        self.seen.add(key)
        if key not in self.obj:
            if optional:
                return None
            raise WireError(f"{self.what}: missing field {key!r}")
        if optional and self.obj[key] is None:  # an optional key is absent, never null
            raise WireError(f"{self.what}: {key} must be left out, not null")
        return self.obj[key]

    def integer(self, key: str, lo: int = 0, hi: int = INT64_MAX, optional: bool = False) -> Any:
        v = self._get(key, optional)
        if v is None and optional:
            return None
        if type(v) is not int or not lo <= v <= hi:
            raise WireError(f"{self.what}: {key} must be an integer in [{lo}, {hi}]")
        return v

    def text(self, key: str, pattern: re.Pattern[str] | None = None, optional: bool = False) -> Any:
        v = self._get(key, optional)
        if v is None and optional:
            return None
        if not isinstance(v, str) or len(v) > MAX_TEXT or (pattern and not pattern.fullmatch(v)):
            raise WireError(f"{self.what}: {key} must be text (at most {MAX_TEXT} characters)")
        return v

    def boolean(self, key: str) -> bool:
        v = self._get(key, False)
        if type(v) is not bool:
            raise WireError(f"{self.what}: {key} must be true or false")
        return v

    def enum(self, key: str, enum: Callable[[Any], Any]) -> Any:
        v = self._get(key, False)
        try:
            return enum(v)
        except (ValueError, TypeError) as err:
            raise WireError(f"{self.what}: {key} has an unknown value {v!r}") from err

    def raw(self, key: str, optional: bool = False) -> Any:
        return self._get(key, optional)

    def done(self) -> None:
        extra = set(self.obj) - self.seen
        if extra:
            raise WireError(f"{self.what}: unknown field(s) {sorted(extra)}")


def _check_json(value: Any, depth: int = 0) -> None:
    """A JSON value within the depth limit, finite numbers, string keys."""
    if depth > MAX_JSON_DEPTH:
        raise WireError(f"JSON nested deeper than {MAX_JSON_DEPTH}")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise WireError("JSON object keys must be strings")
            _check_json(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_json(v, depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise WireError("JSON numbers must be finite")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value <= INT64_MAX:
            raise WireError("JSON integers must fit in 64 bits")
    elif not (value is None or isinstance(value, str | bool)):
        raise WireError(f"not a JSON value: {type(value).__name__}")


def _scalar(value: Any, what: str) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value <= INT64_MAX:
            raise WireError(f"{what}: integer beyond 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise WireError(f"{what}: numbers must be finite")
        return value
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        return value
    raise WireError(f"{what}: values must be text, numbers, booleans or null")


# ------------------------------------------------------------------------------ events


@_encoder
def encode_event(event: Event) -> bytes:
    if not _KIND.fullmatch(event.kind):
        raise WireError(f"event kind {event.kind!r} must match [a-z0-9_]{{1,32}}")
    if (event.lat_e6 is None) != (event.lon_e6 is None):
        raise WireError("event position needs both lat_e6 and lon_e6, or neither")
    details = dict(event.details)
    if len(details) > MAX_DETAILS or len(details) != len(event.details):
        raise WireError(f"event details: at most {MAX_DETAILS} distinct keys")
    for k, v in details.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 64:
            raise WireError("event details keys must be text of 1..64 characters")
        _scalar(v, "event details")
    obj: dict[str, Any] = {
        "seq": event.seq,
        "time_us": event.time_us,
        "kind": event.kind,
        "severity": int(event.severity),
        "details": details,
    }
    if event.lat_e6 is not None:
        obj["lat_e6"] = event.lat_e6
        obj["lon_e6"] = event.lon_e6
    _check_obj_ints(obj, ("seq", "time_us"), 0, INT64_MAX)
    _check_obj_ints(obj, ("lat_e6", "lon_e6"), INT32_MIN, INT32_MAX)
    return _wrap(TYPE_EVENT, obj)


def _check_obj_ints(obj: dict[str, Any], keys: tuple[str, ...], lo: int, hi: int) -> None:
    for key in keys:
        if key in obj and (type(obj[key]) is not int or not lo <= obj[key] <= hi):
            raise WireError(f"{key} must be an integer in [{lo}, {hi}]")


def decode_event(payload: bytes) -> Event:
    f = _Fields(_unwrap(payload, TYPE_EVENT), "event")
    seq = f.integer("seq")
    time_us = f.integer("time_us")
    kind = f.text("kind", _KIND)
    severity = f.enum("severity", Severity)
    lat = f.integer("lat_e6", INT32_MIN, INT32_MAX, optional=True)
    lon = f.integer("lon_e6", INT32_MIN, INT32_MAX, optional=True)
    if (lat is None) != (lon is None):
        raise WireError("event: lat_e6 and lon_e6 come together")
    details = f.raw("details")
    f.done()
    if not isinstance(details, dict) or len(details) > MAX_DETAILS:
        raise WireError(f"event: details must be an object of at most {MAX_DETAILS} keys")
    pairs = []
    for k in sorted(details):
        if not 1 <= len(k) <= 64:
            raise WireError("event: details keys must be text of 1..64 characters")
        pairs.append((k, _scalar(details[k], "event details")))
    return Event(seq, time_us, kind, severity, lat, lon, tuple(pairs))


# ------------------------------------------------------------------------------ commands


@_encoder
def encode_command(command: Command) -> bytes:
    if not _ID.fullmatch(command.id):
        raise WireError("command id must match [A-Za-z0-9_-]{1,64}")
    if not isinstance(command.payload, dict):
        raise WireError("command payload must be a JSON object")
    _check_json(command.payload)
    obj: dict[str, Any] = {
        "seq": command.seq,
        "id": command.id,
        "version": command.version,
        "kind": CommandKind(command.kind).value,
        "payload": command.payload,
        "issued_at_us": command.issued_at_us,
    }
    if command.expires_at_us is not None:
        obj["expires_at_us"] = command.expires_at_us
    _check_obj_ints(obj, ("seq", "version", "issued_at_us", "expires_at_us"), 0, INT64_MAX)
    return _wrap(TYPE_COMMAND, obj)


def decode_command(payload: bytes) -> Command:
    f = _Fields(_unwrap(payload, TYPE_COMMAND), "command")
    seq = f.integer("seq")
    cid = f.text("id", _ID)
    version = f.integer("version")
    kind = f.enum("kind", CommandKind)
    body = f.raw("payload")
    issued = f.integer("issued_at_us")
    expires = f.integer("expires_at_us", optional=True)
    f.done()
    if not isinstance(body, dict):
        raise WireError("command: payload must be a JSON object")
    _check_json(body)
    return Command(seq, cid, version, kind, body, issued, expires)


@_encoder
def encode_command_ack(ack: CommandAck) -> bytes:
    if not _ID.fullmatch(ack.command_id):
        raise WireError("command id must match [A-Za-z0-9_-]{1,64}")
    obj: dict[str, Any] = {
        "seq": ack.seq,
        "command_id": ack.command_id,
        "command_version": ack.command_version,
        "status": AckStatus(ack.status).value,
        "time_us": ack.time_us,
    }
    if ack.reason is not None:
        if len(ack.reason) > MAX_TEXT:
            raise WireError(f"ack reason longer than {MAX_TEXT} characters")
        obj["reason"] = ack.reason
    _check_obj_ints(obj, ("seq", "command_version", "time_us"), 0, INT64_MAX)
    return _wrap(TYPE_COMMAND_ACK, obj)


def decode_command_ack(payload: bytes) -> CommandAck:
    f = _Fields(_unwrap(payload, TYPE_COMMAND_ACK), "command ack")
    ack = CommandAck(
        seq=f.integer("seq"),
        command_id=f.text("command_id", _ID),
        command_version=f.integer("command_version"),
        status=f.enum("status", AckStatus),
        time_us=f.integer("time_us"),
        reason=f.text("reason", optional=True),
    )
    f.done()
    return ack


# ------------------------------------------------------------------------------ stored, state


@_encoder
def encode_stored_ack(ack: StoredAck) -> bytes:
    ranges = [list(r) for r in ack.ranges]
    _check_ranges(ranges)
    obj = {
        "seq": ack.seq,
        "stream": Stream(ack.stream).value,
        "ranges": ranges,
        "time_us": ack.time_us,
    }
    if ack.cloud is not None:
        if not isinstance(ack.cloud, str) or not _ID.fullmatch(ack.cloud):
            raise WireError("stored ack: cloud must match [A-Za-z0-9_-]{1,64}")
        obj["cloud"] = ack.cloud
    _check_obj_ints(obj, ("seq", "time_us"), 0, INT64_MAX)
    return _wrap(TYPE_STORED_ACK, obj)


def _check_ranges(ranges: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(ranges, list) or not 1 <= len(ranges) <= MAX_RANGES:
        raise WireError(f"stored ack: ranges must be a list of 1..{MAX_RANGES} pairs")
    out = []
    for r in ranges:
        if (
            not isinstance(r, list)
            or len(r) != 2
            or any(type(x) is not int for x in r)
            or not 0 <= r[0] <= r[1] <= INT64_MAX
        ):
            raise WireError("stored ack: each range is [first, last] with 0 <= first <= last")
        out.append((r[0], r[1]))
    return tuple(out)


def decode_stored_ack(payload: bytes) -> StoredAck:
    f = _Fields(_unwrap(payload, TYPE_STORED_ACK), "stored ack")
    seq = f.integer("seq")
    stream = f.enum("stream", Stream)
    ranges = _check_ranges(f.raw("ranges"))
    time_us = f.integer("time_us")
    cloud = f.text("cloud", _ID, optional=True)
    f.done()
    return StoredAck(seq, stream, ranges, time_us, cloud)


@_encoder
def encode_state(state: DeviceState) -> bytes:
    obj: dict[str, Any] = {"seq": state.seq, "online": bool(state.online), "time_us": state.time_us}
    if state.agent_version is not None:
        if len(state.agent_version) > MAX_TEXT:
            raise WireError("agent_version too long")
        obj["agent_version"] = state.agent_version
    _check_obj_ints(obj, ("seq", "time_us"), 0, INT64_MAX)
    return _wrap(TYPE_STATE, obj, deflate=False)


def decode_state(payload: bytes) -> DeviceState:
    f = _Fields(_unwrap(payload, TYPE_STATE), "state")
    state = DeviceState(
        seq=f.integer("seq"),
        online=f.boolean("online"),
        time_us=f.integer("time_us"),
        agent_version=f.text("agent_version", optional=True),
    )
    f.done()
    return state


# ------------------------------------------------------------------------------ sensors


@_encoder
def encode_sensors(samples: tuple[SensorSample, ...] | list[SensorSample] | SensorBatch) -> bytes:
    """Columns grouped into series (kind, source, name, unit), seq and time delta-coded;
    deflate removes the rest of the redundancy. Values are JSON numbers (exact doubles)."""
    if isinstance(samples, SensorBatch):
        samples = samples.samples
    n = len(samples)
    if not 1 <= n <= MAX_SAMPLES_PER_BATCH:
        raise WireError(f"a sensor batch holds 1..{MAX_SAMPLES_PER_BATCH} samples, not {n}")
    series: dict[tuple[int, str, str, str], list[SensorSample]] = {}
    prev_seq = -1
    for s in samples:
        if s.seq <= prev_seq:
            raise WireError("sensor seq must strictly increase within a batch")
        prev_seq = s.seq
        if isinstance(s.value, bool) or not isinstance(s.value, int | float):
            raise WireError("sensor value must be a number")
        if isinstance(s.value, float) and not math.isfinite(s.value):
            raise WireError("sensor value must be finite")
        key = (int(SensorKind(s.kind)), s.source, s.name, s.unit)
        for text in key[1:]:
            if len(text) > 64:
                raise WireError("sensor source, name and unit are at most 64 characters")
        series.setdefault(key, []).append(s)
    out = []
    for (kind, source, name, unit), rows in series.items():
        seqs = [r.seq for r in rows]
        times = [r.time_us for r in rows]
        out.append(
            [
                kind,
                source,
                name,
                unit,
                [seqs[0]] + [b - a for a, b in itertools.pairwise(seqs)],
                [times[0]] + [b - a for a, b in itertools.pairwise(times)],
                [r.value for r in rows],
            ]
        )
    _check_obj_ints({"seq": samples[0].seq, "last": samples[-1].seq}, ("seq", "last"), 0, INT64_MAX)
    for s in samples:
        if not 0 <= s.time_us <= INT64_MAX:
            raise WireError("sensor time_us outside [0, 2**63)")
    return _wrap(TYPE_SENSORS, {"series": out})


def decode_sensors(payload: bytes, vehicle: VehicleRef) -> SensorBatch:
    f = _Fields(_unwrap(payload, TYPE_SENSORS), "sensor batch")
    series = f.raw("series")
    f.done()
    if not isinstance(series, list) or not series:
        raise WireError("sensor batch: series must be a non-empty list")
    samples: list[SensorSample] = []
    for item in series:
        if not isinstance(item, list) or len(item) != 7:
            raise WireError("sensor batch: each series is [kind, source, name, unit, ...]")
        kind_v, source, name, unit, dseq, dtime, values = item
        try:
            kind = SensorKind(kind_v) if type(kind_v) is int else None
        except ValueError:
            kind = None
        if kind is None:
            raise WireError(f"sensor batch: unknown sensor kind {kind_v!r}")
        if not all(isinstance(t, str) and len(t) <= 64 for t in (source, name, unit)):
            raise WireError("sensor batch: source, name and unit are text of <= 64 characters")
        if not (isinstance(dseq, list) and isinstance(dtime, list) and isinstance(values, list)):
            raise WireError("sensor batch: columns must be lists")
        m = len(dseq)
        if not m or len(dtime) != m or len(values) != m:
            raise WireError("sensor batch: columns of one series must have the same length")
        if len(samples) + m > MAX_SAMPLES_PER_BATCH:
            raise WireError(f"oversized: more than {MAX_SAMPLES_PER_BATCH} samples")
        if any(type(x) is not int for x in dseq) or any(type(x) is not int for x in dtime):
            raise WireError("sensor batch: seq and time deltas must be integers")
        if any(x <= 0 for x in dseq[1:]) or dseq[0] < 0:
            raise WireError("sensor batch: seq must strictly increase")
        seq = t = 0
        for ds, dt, v in zip(dseq, dtime, values, strict=True):
            seq += ds
            t += dt
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise WireError("sensor batch: values must be numbers")
            if isinstance(v, float) and not math.isfinite(v):
                raise WireError("sensor batch: values must be finite")
            if seq > INT64_MAX or not 0 <= t <= INT64_MAX:
                raise WireError("sensor batch: seq or time outside 64 bits")
            samples.append(SensorSample(seq, t, kind, source, name, v, unit))
    samples.sort(key=lambda s: s.seq)
    if any(a.seq == b.seq for a, b in itertools.pairwise(samples)):
        raise WireError("sensor batch: duplicate seq")
    return SensorBatch(vehicle, tuple(samples))
