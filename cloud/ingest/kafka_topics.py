"""Kafka topic names of the cloud side (the MQTT topics are in ``flota_wire.topics``).

Records on the vehicle topics are keyed by ``tenant/vehicle`` so one vehicle's records stay in
order on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KafkaTopics:
    """The topic family under one prefix (``flota`` by default)."""

    prefix: str = "flota"

    @property
    def telemetry(self) -> str:
        """Telemetry batches exactly as the vehicle encoded them (flota_wire v1)."""
        return f"{self.prefix}.telemetry.v1"

    @property
    def sensors(self) -> str:
        """Sensor-sample batches exactly as the vehicle encoded them."""
        return f"{self.prefix}.sensors.v1"

    @property
    def events(self) -> str:
        """Events detected on the vehicle, as published by it."""
        return f"{self.prefix}.events.v1"

    @property
    def quarantine(self) -> str:
        """Messages the bridge refused (undecodable, unknown device, topic mismatch)."""
        return f"{self.prefix}.quarantine.v1"

    @property
    def stored(self) -> str:
        """End-to-end acknowledgements from the store: "stored up to seq N" per vehicle."""
        return f"{self.prefix}.stored.v1"

    @property
    def commands(self) -> str:
        """Commands for vehicles (route plans, configuration, model updates)."""
        return f"{self.prefix}.commands.v1"

    @property
    def command_acks(self) -> str:
        """Vehicles' acknowledgements of commands."""
        return f"{self.prefix}.command-acks.v1"

    @property
    def domain_events(self) -> str:
        """Events computed in the cloud (trips, geofences, speeding, ...)."""
        return f"{self.prefix}.domain-events.v1"


def vehicle_key(tenant: str, vehicle: str) -> bytes:
    """The Kafka record key of one vehicle."""
    return f"{tenant}/{vehicle}".encode()
