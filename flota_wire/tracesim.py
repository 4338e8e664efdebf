"""A seeded, procedural city-driving trace: the reference input for wire-size figures.

Not part of the contract; it lives here so that the benchmark (`flota bench wire`) and the
tests use the same realistic input. The vehicle drives straight street segments of 60-250 m,
turns (about 35% of intersections, on 12 m arcs), stops at about 30% of them for 5-45 s, and
cruises at 8-19 m/s with bounded acceleration and jerk. The receiver adds what real ones do:
slowly wandering position error (Gauss-Markov, sigma 1 m, 30 s), Doppler speed noise, course
held while stopped, altitude noise, HDOP and satellite counts that step now and then, whole-
second timestamps, and an occasional missing epoch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from flota_wire.schema import Fix

_M_PER_DEG_LAT = 111_132.954


def simulate_city(
    seconds: float,
    *,
    rate_hz: float = 1.0,
    seed: int = 0,
    lat0: float = 60.1699,
    lon0: float = 24.9384,
    start_us: int = 1_795_780_800_000_000,  # 2026-11-28T08:00:00Z
    first_seq: int = 1_000_000,
    dropout: float = 0.005,
) -> list[Fix]:
    """Fixes of one vehicle driving a synthetic city for ``seconds`` at ``rate_hz``."""
    rng = random.Random(seed)
    dt = 0.02
    sample_every = round(1 / rate_hz / dt)
    m_per_deg_lon = _M_PER_DEG_LAT * math.cos(math.radians(lat0))
    x = y = 0.0
    heading = rng.uniform(0, 2 * math.pi)
    v = 0.0
    acc = 0.0
    seg_left = rng.uniform(60, 250)
    cruise = rng.uniform(8, 16)
    stop_at_end = rng.random() < 0.3
    turn_at_end = 0.0 if stop_at_end else _turn(rng)
    stopped_for = 0.0
    turning = 0.0  # radians still to turn
    # receiver state
    ex = ey = 0.0
    ealt = 0.0
    phi_pos = math.exp(-1 / rate_hz / 30)
    phi_alt = math.exp(-1 / rate_hz / 60)
    track = math.degrees(heading) % 360
    hdop = 0.9
    sats = 11
    seq = first_seq
    fixes: list[Fix] = []
    steps = round(seconds / dt)
    for step in range(steps):
        # --- vehicle dynamics at 50 Hz
        if stopped_for > 0:
            stopped_for -= dt
            target = 0.0
            if stopped_for <= 0:
                seg_left = rng.uniform(60, 250)
                cruise = rng.uniform(8, 19)
                stop_at_end = rng.random() < 0.3
                turn_at_end = 0.0 if stop_at_end else _turn(rng)
        else:
            end_speed = 0.0 if stop_at_end else (5.0 if turn_at_end else cruise)
            target = min(cruise, math.sqrt(end_speed**2 + 2 * 1.8 * max(seg_left - 2, 0)))
            if turning:
                target = min(target, 5.5)
        want = max(-3.0, min(1.5, (target - v) * 1.2))
        acc += (want - acc) * min(1.0, dt / 0.6)  # bounded jerk
        v = max(0.0, v + acc * dt)
        if v == 0.0 and acc < 0:
            acc = 0.0
        ds = v * dt
        if turning:
            dh = math.copysign(min(abs(turning), ds / 12.0), turning)
            heading += dh
            turning -= dh
        x += ds * math.sin(heading)
        y += ds * math.cos(heading)
        seg_left -= ds
        if stopped_for <= 0 and seg_left <= 0:
            if stop_at_end:
                if v < 0.05:
                    stopped_for = rng.uniform(5, 45)
            else:
                turning = turn_at_end
                seg_left = rng.uniform(60, 250)
                cruise = rng.uniform(8, 19)
                stop_at_end = rng.random() < 0.3
                turn_at_end = 0.0 if stop_at_end else _turn(rng)
        if (step + 1) % sample_every:
            continue
        # --- receiver epoch
        ex = ex * phi_pos + rng.gauss(0, 1.0) * math.sqrt(1 - phi_pos**2)
        ey = ey * phi_pos + rng.gauss(0, 1.0) * math.sqrt(1 - phi_pos**2)
        ealt = ealt * phi_alt + rng.gauss(0, 2.0) * math.sqrt(1 - phi_alt**2)
        speed = max(0.0, v + rng.gauss(0, 0.05)) if v > 0.1 else abs(rng.gauss(0, 0.03))
        if v > 0.5:
            track = (math.degrees(heading) + rng.gauss(0, 0.3)) % 360
        if rng.random() < 0.05:
            hdop = min(2.5, max(0.6, hdop + rng.choice((-0.1, 0.1))))
        if rng.random() < 0.03:
            sats = min(16, max(6, sats + rng.choice((-1, 1))))
        seq += 1
        if rng.random() < dropout:
            continue
        t_us = start_us + round((step + 1) * dt * 1e6)
        alt = 25 + 8 * math.sin(x / 400) + 5 * math.cos(y / 300) + ealt
        fixes.append(
            Fix.from_si(
                seq=seq,
                time_us=t_us,
                lat=lat0 + (y + ey) / _M_PER_DEG_LAT,
                lon=lon0 + (x + ex) / m_per_deg_lon,
                alt_m=alt,
                speed_mps=speed,
                track_deg=track,
                hdop=hdop,
                sats=sats,
            )
        )
    return fixes


def _turn(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.35:
        return math.radians(rng.choice((-90, 90)) + rng.uniform(-10, 10))
    return math.radians(rng.uniform(-15, 15)) if r < 0.6 else 0.0


def batches(fixes: Sequence[Fix], size: int) -> Iterator[list[Fix]]:
    """Consecutive batches of at most ``size`` fixes."""
    for i in range(0, len(fixes), size):
        yield list(fixes[i : i + size])
