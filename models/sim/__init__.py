"""A seeded vehicle-dynamics simulator: IMU at 100 Hz, OBD-II at 1 Hz and GPS, with labelled events.

No public driving data set is reachable here, so the edge models are trained and tested on
these streams; the demo's fleet drives the same trips. ``Trip(seed).stream()`` yields timed
samples; ``Trip(seed).data()`` gives the whole trip as arrays for training.
"""

from models.sim.device import Device
from models.sim.labels import ENGINE_CLASSES, IMU_CLASSES, Event
from models.sim.route import Route
from models.sim.samples import GpsSample, ImuSample, ObdSample, Sample
from models.sim.trip import Trip, TripConfig, TripData
from models.sim.vehicle import Vehicle

__all__ = [
    "ENGINE_CLASSES",
    "IMU_CLASSES",
    "Device",
    "Event",
    "GpsSample",
    "ImuSample",
    "ObdSample",
    "Route",
    "Sample",
    "Trip",
    "TripConfig",
    "TripData",
    "Vehicle",
]
