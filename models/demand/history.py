"""A seeded order history per H3 cell and hour, with the structure real demand has: a level
per cell, daily and weekly cycles that differ between business and residential cells, a slow
trend, city-wide shocks lasting hours (weather), public holidays, and local promotions."""

from __future__ import annotations

from dataclasses import dataclass

import h3
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
HOURS_PER_WEEK = 168


@dataclass(frozen=True)
class OrderHistory:
    cells: tuple[str, ...]  # H3 resolution 8
    counts: F64  # (hours, cells) orders created in each hour
    rate: F64  # (hours, cells) the expected count the counts were drawn from
    start_weekday: int  # 0 = Monday, the first hour is 00:00 local


def simulate_history(seed: int, weeks: int = 20, ring: int = 3) -> OrderHistory:
    rng = np.random.default_rng(seed)
    centre = h3.latlng_to_cell(60.1699, 24.9384, 8)
    cells = tuple(sorted(h3.grid_disk(centre, ring)))
    n_c, n_h = len(cells), weeks * HOURS_PER_WEEK
    hours = np.arange(n_h)
    hod, dow = hours % 24, (hours // 24) % 7
    level = rng.lognormal(mean=1.0, sigma=0.7, size=n_c)  # orders per hour at the daily mean
    business = rng.random(n_c)  # 1 = offices, 0 = homes
    peak_b = np.exp(-(((hod[:, None] - 10.5) / 2.5) ** 2)) + 0.8 * np.exp(
        -(((hod[:, None] - 14.5) / 2.0) ** 2)
    )
    peak_r = 0.6 * np.exp(-(((hod[:, None] - 8.0) / 1.5) ** 2)) + np.exp(
        -(((hod[:, None] - 18.5) / 2.5) ** 2)
    )
    daily = 0.08 + business * peak_b + (1 - business) * peak_r
    weekend = (dow >= 5)[:, None]
    weekly = np.where(weekend, 0.35 + 0.8 * (1 - business), 1.0)
    trend = 1.0 + rng.uniform(-0.1, 0.3, n_c) * hours[:, None] / n_h
    shock = np.zeros(n_h)  # city-wide: storms, strikes; persists for hours
    for h in range(1, n_h):
        shock[h] = 0.97 * shock[h - 1] + rng.normal(0, 0.06)
    holidays = rng.choice(np.arange(weeks * 7), size=weeks // 4, replace=False)
    holiday = np.isin(hours // 24, holidays)[:, None]
    promo = np.ones((n_h, n_c))
    for _ in range(weeks * 2):
        c, d = rng.integers(n_c), rng.integers(weeks * 7)
        promo[d * 24 : d * 24 + 24, c] *= rng.uniform(1.5, 2.5)
    rate = (
        level
        * daily
        * weekly
        * trend
        * np.exp(shock)[:, None]
        * np.where(holiday, 0.45, 1.0)
        * promo
    )
    counts = rng.poisson(rate).astype(np.float64)
    return OrderHistory(cells, counts, rate, start_weekday=0)
