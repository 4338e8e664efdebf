"""MQTT topic names, version 1.

Every topic sits under ``flota/v1/{tenant}/{vehicle}/``. The device publishes under ``up/`` and
to ``state``; it subscribes to ``down/``. The cloud's shared-subscription filters use ``+`` for
tenant and vehicle. Topic segments are restricted to ``[A-Za-z0-9_-]`` so a tenant or vehicle id
can never inject a wildcard or an extra level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from flota_wire.errors import WireError

ROOT = "flota"
VERSION = "v1"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Channel(StrEnum):
    """The last part of a topic: what flows on it and in which direction."""

    TELEMETRY = "up/telemetry"  # device -> cloud: binary telemetry batches (QoS 1)
    SENSORS = "up/sensors"  # device -> cloud: sensor sample batches (QoS 1)
    EVENTS = "up/events"  # device -> cloud: events the vehicle detected (QoS 1)
    COMMAND_ACKS = "up/acks"  # device -> cloud: acknowledgements of commands (QoS 1)
    STATE = "state"  # device -> cloud, retained: "online" / "offline" (last will)
    COMMANDS = "down/commands"  # cloud -> device: route plans, configuration, model updates
    STORED = "down/stored"  # cloud -> device: "stored up to seq N" (end-to-end ack)


UPLINK: frozenset[Channel] = frozenset(
    {Channel.TELEMETRY, Channel.SENSORS, Channel.EVENTS, Channel.COMMAND_ACKS, Channel.STATE}
)
DOWNLINK: frozenset[Channel] = frozenset({Channel.COMMANDS, Channel.STORED})


class TopicError(WireError):
    """A topic or topic segment that is not part of the contract (a WireError, a ValueError)."""


def check_segment(value: str, what: str) -> str:
    """Return ``value`` if it is a legal tenant or vehicle id, else raise TopicError."""
    if not _SEGMENT.fullmatch(value):
        raise TopicError(f"{what} {value!r} must match [A-Za-z0-9_-]{{1,64}}")
    return value


def topic(tenant: str, vehicle: str, channel: Channel) -> str:
    """The concrete topic of one vehicle's channel."""
    check_segment(tenant, "tenant")
    check_segment(vehicle, "vehicle")
    return f"{ROOT}/{VERSION}/{tenant}/{vehicle}/{channel.value}"


def vehicle_prefix(tenant: str, vehicle: str) -> str:
    """Everything of one vehicle: ``flota/v1/{tenant}/{vehicle}``."""
    return f"{ROOT}/{VERSION}/{check_segment(tenant, 'tenant')}/{check_segment(vehicle, 'vehicle')}"


def subscription(channel: Channel, group: str | None = None) -> str:
    """The cloud-side filter for one channel over all vehicles, optionally an MQTT 5 / 3.1.1
    shared subscription (``$share/{group}/...``) so several bridges split the load."""
    flt = f"{ROOT}/{VERSION}/+/+/{channel.value}"
    return f"$share/{check_segment(group, 'group')}/{flt}" if group else flt


@dataclass(frozen=True, slots=True)
class TopicAddress:
    """A parsed concrete topic."""

    tenant: str
    vehicle: str
    channel: Channel


_CHANNELS = {c.value: c for c in Channel}


def parse(topic_name: str) -> TopicAddress:
    """Parse a concrete topic; raise TopicError for anything outside the contract."""
    parts = topic_name.split("/")
    if len(parts) < 5 or parts[0] != ROOT or parts[1] != VERSION:
        raise TopicError(f"not a flota/{VERSION} topic: {topic_name!r}")
    channel = _CHANNELS.get("/".join(parts[4:]))
    if channel is None:
        raise TopicError(f"unknown channel in topic {topic_name!r}")
    return TopicAddress(
        tenant=check_segment(parts[2], "tenant"),
        vehicle=check_segment(parts[3], "vehicle"),
        channel=channel,
    )
