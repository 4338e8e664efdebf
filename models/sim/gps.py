"""GNSS fixes along the driven path, with the slow, correlated error real receivers show."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from models.sim.driving import Kinematics
from models.sim.route import Route

F64 = npt.NDArray[np.float64]
M_PER_DEG_LAT = 111_320.0


def simulate_gps(
    kin: Kinematics, route: Route, rng: np.random.Generator, hz: float
) -> tuple[F64, F64, F64, F64, F64]:
    """Time (s), latitude and longitude (degrees), speed (m/s) and track (degrees) at ``hz``."""
    t = np.arange(0.0, kin.t[-1], 1.0 / hz)
    s = np.interp(t, kin.t, kin.s)
    v = np.interp(t, kin.t, kin.v)
    east, north, heading = route.geometry()
    grid = np.arange(len(east))
    e = np.interp(s, grid, east)
    nn = np.interp(s, grid, north)
    h = np.interp(s, grid, heading)
    rho = math.exp(-1.0 / (30.0 * hz))  # error correlated over about 30 s
    err = np.zeros((len(t), 2))
    step = rng.normal(0.0, 2.0 * math.sqrt(1 - rho * rho), (len(t), 2))
    for i in range(1, len(t)):
        err[i] = rho * err[i - 1] + step[i]
    lat0, lon0 = route.origin
    lat = lat0 + (nn + err[:, 1]) / M_PER_DEG_LAT
    lon = lon0 + (e + err[:, 0]) / (M_PER_DEG_LAT * math.cos(math.radians(lat0)))
    speed = np.maximum(0.0, v + rng.normal(0.0, 0.1, len(t)))
    track = np.mod(90.0 - np.degrees(h), 360.0)
    return t, lat, lon, speed, track
