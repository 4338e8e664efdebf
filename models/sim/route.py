"""Road-like routes sampled every metre: curvature, speed limit, grade, roughness, stops."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
DS = 1.0  # m between route samples

# (limit km/h range, straight m range, curve radius m range, junction probability, roughness)
_ROAD_KINDS: dict[
    str,
    tuple[
        tuple[float, float], tuple[float, float], tuple[float, float], float, tuple[float, float]
    ],
] = {
    "urban": ((30, 50), (60, 300), (25, 120), 0.55, (0.3, 0.9)),
    "suburban": ((50, 70), (150, 700), (60, 300), 0.25, (0.2, 0.6)),
    "highway": ((80, 110), (500, 2500), (300, 1500), 0.0, (0.05, 0.3)),
}


@dataclass(frozen=True)
class Route:
    """A path the driver follows; index i is the point at i metres along it.

    ``stops`` are indices where the vehicle must come to rest (junctions, signals); the driver
    plans each leg between stops from rest to rest.
    """

    curvature: F64  # 1/m, positive = turning left
    speed_limit: F64  # m/s
    grade: F64  # rise over run
    roughness: F64  # 0 (new asphalt) .. 1 (broken road)
    stops: tuple[int, ...]
    origin: tuple[float, float] = (60.1699, 24.9384)  # lat, lon degrees
    heading0: float = 0.0  # rad, counter-clockwise from east

    @property
    def length_m(self) -> float:
        return float(len(self.curvature) - 1) * DS

    @classmethod
    def random(cls, seed: int, length_m: float = 8000.0, kind: str | None = None) -> Route:
        """A random road mix: straights, curves, junction turns, hills; reproducible for a seed."""
        rng = np.random.default_rng(seed)
        curv: list[F64] = []
        limit: list[F64] = []
        rough: list[F64] = []
        stops: list[int] = []
        total = 0
        while total < length_m:
            k = kind or str(rng.choice(["urban", "suburban", "highway"], p=[0.5, 0.3, 0.2]))
            lim_r, straight_r, radius_r, p_junction, rough_r = _ROAD_KINDS[k]
            stretch_end = total + rng.uniform(800, 2500)
            lim = rng.uniform(*lim_r) / 3.6
            rgh = rng.uniform(*rough_r)
            while total < min(stretch_end, length_m):
                n_straight = int(rng.uniform(*straight_r))
                pieces = [np.zeros(n_straight)]
                if rng.random() < p_junction:
                    # A junction: stop (or not), then a tight turn of about 90 degrees.
                    if rng.random() < 0.6:
                        stops.append(total + n_straight)
                    radius = rng.uniform(8, 20)
                    angle = rng.choice([-1.0, 1.0]) * rng.uniform(70, 100) * math.pi / 180
                else:
                    radius = rng.uniform(*radius_r)
                    angle = rng.choice([-1.0, 1.0]) * rng.uniform(15, 100) * math.pi / 180
                n_curve = max(3, int(abs(angle) * radius))
                pieces.append(np.full(n_curve, math.copysign(1.0 / radius, angle)))
                seg = np.concatenate(pieces)
                curv.append(seg)
                limit.append(np.full(len(seg), lim))
                rough.append(np.full(len(seg), rgh))
                total += len(seg)
        kappa = np.concatenate(curv)[: int(length_m) + 1]
        n = len(kappa)
        # Real roads ease into curves (clothoids); a 12 m box filter keeps the turned angle.
        kernel = np.ones(12) / 12
        kappa = np.convolve(kappa, kernel, mode="same")
        x = np.arange(n) * DS
        grade = np.zeros(n)
        for _ in range(3):
            wavelength = rng.uniform(300, 3000)
            grade += rng.uniform(0, 0.04) * np.sin(2 * math.pi * x / wavelength + rng.uniform(0, 6))
        if rng.random() < 0.3:  # a proper hill somewhere
            centre, width = rng.uniform(0, n), rng.uniform(200, 800)
            grade += rng.uniform(-0.1, 0.1) * np.exp(-(((x - centre) / width) ** 2))
        stops_in = tuple(s for s in sorted(set(stops)) if 50 < s < n - 50)
        lat0 = 60.17 + rng.uniform(-0.1, 0.1)
        lon0 = 24.94 + rng.uniform(-0.2, 0.2)
        return cls(
            curvature=kappa,
            speed_limit=np.concatenate(limit)[:n],
            grade=np.clip(grade, -0.12, 0.12),
            roughness=np.concatenate(rough)[:n],
            stops=stops_in,
            origin=(lat0, lon0),
            heading0=float(rng.uniform(-math.pi, math.pi)),
        )

    def geometry(self) -> tuple[F64, F64, F64]:
        """East and north (m from origin) and heading (rad, CCW from east) at every metre."""
        heading = self.heading0 + np.concatenate([[0.0], np.cumsum(self.curvature[:-1]) * DS])
        east = np.concatenate([[0.0], np.cumsum(np.cos(heading[:-1])) * DS])
        north = np.concatenate([[0.0], np.cumsum(np.sin(heading[:-1])) * DS])
        return east, north, heading
