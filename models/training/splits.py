"""Train, validation and test sets: disjoint trip seeds AND disjoint devices (mountings)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from models.sim import Device, Trip, TripConfig, Vehicle


@dataclass(frozen=True)
class Split:
    """A set of devices, each driving ``trips_per_device`` trips in order."""

    name: str
    base: int
    devices: int
    trips_per_device: int
    length_m: float = 8000.0

    def trips(self) -> Iterator[tuple[int, Trip]]:
        """(device index, trip) pairs; a device's trips come in driving order."""
        for dev in range(self.devices):
            device = Device.random(self.base + 500_000 + dev)
            vehicle = Vehicle.random(self.base + 700_000 + dev)
            for k in range(self.trips_per_device):
                seed = self.base + dev * 100 + k
                yield (
                    dev,
                    Trip(
                        seed,
                        device=device,
                        vehicle=vehicle,
                        config=TripConfig(length_m=self.length_m),
                    ),
                )


SPLITS: dict[str, Split] = {
    "train": Split("train", 1_000_000, devices=40, trips_per_device=3),
    "val": Split("val", 2_000_000, devices=10, trips_per_device=3),
    "test": Split("test", 3_000_000, devices=20, trips_per_device=3),
}


def split(name: str, scale: float = 1.0) -> Split:
    """A split, optionally shrunk (``scale`` < 1) for quick tests; seeds stay disjoint."""
    s = SPLITS[name]
    if scale >= 1.0:
        return s
    return Split(s.name, s.base, max(1, round(s.devices * scale)), s.trips_per_device, s.length_m)
