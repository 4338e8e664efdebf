"""Hard limits of the wire contract, version 1 (shared by encoder and decoder)."""

from __future__ import annotations

SCHEMA_VERSION = 1

MAX_PAYLOAD_BYTES = 256 * 1024
"""No payload of any type may exceed this, compressed or not (also the inflate limit)."""

MAX_FIXES_PER_BATCH = 4096
"""A telemetry batch holds 1..4096 fixes; the agent splits longer backlogs."""

MAX_SAMPLES_PER_BATCH = 16384
"""A sensor batch holds 1..16384 samples."""

MAX_JSON_DEPTH = 16
"""Nesting limit for command payloads and event details."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
