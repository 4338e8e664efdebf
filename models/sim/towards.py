"""A route to a destination: city blocks (straights joined by junction turns) from a start to a
target, for vehicles that drive their plan's stops.

The path runs along the local east and north axes, as on a street grid, in two to four legs;
the last two legs (one per axis) are lengthened or shortened until the end of the route lies
on the target, so the vehicle comes to rest where the stop is.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from models.sim.route import DS, Route

F64 = npt.NDArray[np.float64]
M_PER_DEG_LAT = 111_320.0  # as the GPS simulator projects (models.sim.gps)
TURN_RADIUS_M = 12.0
MIN_LEG_M = 3 * TURN_RADIUS_M  # a leg shorter than this is folded into its neighbour
MIN_ROUTE_M = 40.0  # nearer than this the vehicle is there already


def offset_m(start: tuple[float, float], target: tuple[float, float]) -> tuple[float, float]:
    """East and north metres from ``start`` to ``target`` (lat, lon degrees), in the same
    local projection the GPS simulator uses from a route's origin."""
    north = (target[0] - start[0]) * M_PER_DEG_LAT
    east = (target[1] - start[1]) * M_PER_DEG_LAT * math.cos(math.radians(start[0]))
    return east, north


def _legs(east: float, north: float, rng: np.random.Generator) -> list[tuple[int, float]]:
    """Signed legs as (axis, metres), axis 0 = east, 1 = north; axes alternate."""
    parts = [(0, east), (1, north)]
    if rng.random() < 0.5:
        parts.reverse()
    # A long first axis is split round the other one now and then: a block's detour.
    first_axis, first_len = parts[0]
    if abs(first_len) > 6 * MIN_LEG_M and rng.random() < 0.5:
        cut = rng.uniform(0.3, 0.7)
        parts = [(first_axis, first_len * cut), parts[1], (first_axis, first_len * (1 - cut))]
    legs = [(a, d) for a, d in parts if abs(d) >= MIN_LEG_M]
    if not legs:  # both short: one leg along the longer axis
        legs = [(0, east)] if abs(east) >= abs(north) else [(1, north)]
    return legs


def _heading(axis: int, d: float) -> float:
    """Radians counter-clockwise from east."""
    if axis == 0:
        return 0.0 if d >= 0 else math.pi
    return math.pi / 2 if d >= 0 else -math.pi / 2


def _curvature(legs: list[tuple[int, float]]) -> tuple[F64, list[int]]:
    """Per-metre curvature and the indices of the junctions (where a turn starts)."""
    pieces: list[F64] = []
    junctions: list[int] = []
    total = 0
    for i, (axis, d) in enumerate(legs):
        turn_in = i > 0
        turn_out = i < len(legs) - 1
        straight = abs(d) - TURN_RADIUS_M * (turn_in + turn_out)
        pieces.append(np.zeros(max(1, round(straight / DS))))
        total += len(pieces[-1])
        if turn_out:
            nxt_axis, nxt_d = legs[i + 1]
            dh = _heading(nxt_axis, nxt_d) - _heading(axis, d)
            dh = (dh + math.pi) % (2 * math.pi) - math.pi  # +-90 degrees
            n = max(3, round(abs(dh) * TURN_RADIUS_M / DS))
            junctions.append(total)
            pieces.append(np.full(n, dh / (n * DS)))
            total += n
    # Real roads ease into turns (clothoids): the same 12 m box filter as Route.random keeps
    # the turned angle (the end is then corrected as for any other drift).
    kappa = np.convolve(np.concatenate(pieces), np.ones(12) / 12, mode="same")
    return kappa, junctions


def route_towards(
    seed: int,
    start: tuple[float, float],
    target: tuple[float, float],
    limit_mps: tuple[float, float] = (30 / 3.6, 50 / 3.6),
) -> Route:
    """A street-grid route from ``start`` to ``target`` (lat, lon degrees), urban speed limits;
    reproducible for a seed. The route's end is within a few metres of the target."""
    rng = np.random.default_rng(seed)
    east, north = offset_m(start, target)
    if math.hypot(east, north) < MIN_ROUTE_M:
        raise ValueError(f"target {math.hypot(east, north):.0f} m away: too near for a route")
    legs = _legs(east, north, rng)
    kappa: F64 = np.zeros(1)
    junctions: list[int] = []
    for _ in range(3):  # the turns' smoothing moves the end a little: correct and rebuild
        kappa, junctions = _curvature(legs)
        route = _route(kappa, junctions, start, legs, limit_mps, rng)
        e, n, _h = route.geometry()
        err_e, err_n = east - float(e[-1]), north - float(n[-1])
        if math.hypot(err_e, err_n) < 1.5:
            return route
        legs = _corrected(legs, err_e, err_n)
    return _route(kappa, junctions, start, legs, limit_mps, rng)


Legs = list[tuple[int, float]]


def _corrected(legs: Legs, err_e: float, err_n: float) -> Legs:
    """The last leg along each axis takes that axis's error (keeping its direction)."""
    out = list(legs)
    for axis, err in ((0, err_e), (1, err_n)):
        for i in range(len(out) - 1, -1, -1):
            a, d = out[i]
            if a == axis:
                new = d + err
                if new * d > 0:  # never reverse a leg; a residual error is then accepted
                    out[i] = (a, new)
                break
    return out


def _route(
    kappa: F64,
    junctions: list[int],
    start: tuple[float, float],
    legs: list[tuple[int, float]],
    limit_mps: tuple[float, float],
    rng: np.random.Generator,
) -> Route:
    n = len(kappa)
    limit = np.full(n, rng.uniform(*limit_mps))
    stops = tuple(j for j in junctions if 100 < j < n - 100 and rng.random() < 0.6)
    x = np.arange(n) * DS
    grade = rng.uniform(0, 0.03) * np.sin(2 * math.pi * x / rng.uniform(300, 3000))
    return Route(
        curvature=kappa,
        speed_limit=limit,
        grade=grade,
        roughness=np.full(n, rng.uniform(0.3, 0.9)),
        stops=stops,
        origin=start,
        heading0=_heading(*legs[0]),
    )
