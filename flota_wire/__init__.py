"""The wire contract shared by vehicle and cloud, version 1. Imports nothing else of ours.

Spec: docs/wire-protocol.md. Entry points: :func:`encode`, :func:`decode` (and, for bulk
ingest, :func:`decode_telemetry_columns`); topics in :mod:`flota_wire.topics`; one error type,
:class:`WireError`.
"""

from flota_wire.checks import fix_problems
from flota_wire.codec import CHANNEL_OF, Message, Received, check_header, decode, encode
from flota_wire.errors import WireError
from flota_wire.limits import MAX_FIXES_PER_BATCH, MAX_PAYLOAD_BYTES, SCHEMA_VERSION
from flota_wire.schema import (
    AckStatus,
    Command,
    CommandAck,
    CommandKind,
    DeviceState,
    Event,
    EventKind,
    Fix,
    SensorBatch,
    SensorKind,
    SensorSample,
    Severity,
    StoredAck,
    Stream,
    TelemetryBatch,
    VehicleRef,
)
from flota_wire.telemetry import (
    TelemetryColumns,
    decode_telemetry,
    decode_telemetry_columns,
    encode_telemetry,
)
from flota_wire.topics import Channel, TopicError, parse, subscription, topic

__all__ = [
    "CHANNEL_OF",
    "MAX_FIXES_PER_BATCH",
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "AckStatus",
    "Channel",
    "Command",
    "CommandAck",
    "CommandKind",
    "DeviceState",
    "Event",
    "EventKind",
    "Fix",
    "Message",
    "Received",
    "SensorBatch",
    "SensorKind",
    "SensorSample",
    "Severity",
    "StoredAck",
    "Stream",
    "TelemetryBatch",
    "TelemetryColumns",
    "TopicError",
    "VehicleRef",
    "WireError",
    "check_header",
    "decode",
    "decode_telemetry",
    "decode_telemetry_columns",
    "encode",
    "encode_telemetry",
    "fix_problems",
    "parse",
    "subscription",
    "topic",
]
