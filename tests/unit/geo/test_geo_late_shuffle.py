"""Late and out-of-order fixes shuffled into a trace change nothing: the same events, the same
odometer, the same final state as the clean trace (apart from the late counter)."""

from __future__ import annotations

import random

import pytest
from geo_traces import Run, Trace, box_fence, ignition

from cloud.ingest.geo.machine import FixIn
from flota_wire.schema import Event


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_late_fixes_fire_nothing(seed: int) -> None:
    rng = random.Random(seed)
    fences = [box_fence("depot", 500, 1500, dwell_s=60), box_fence("yard", 2500, 2600)]
    trace = Trace().stand(30).drive(150, 10.0).drive(30, 28.0).stand(400).drive(100, 12.0)
    clean: list[FixIn | Event] = [ignition(1, 0, True), *trace.fixes]
    noisy = list(clean)
    late = 0
    for _ in range(150):
        at = rng.randrange(2, len(noisy))
        newest = max(x.time_us for x in noisy[:at] if isinstance(x, FixIn))
        # An older fix, anywhere along the route (inside fences, far away, fast or standing).
        src = rng.choice(trace.fixes)
        fake = FixIn(newest - rng.randrange(0, 120_000_000), src.lat + rng.uniform(-0.01, 0.01),
                     src.lon, rng.choice([0.0, 15.0, 40.0]))  # fmt: skip
        noisy.insert(at, fake)
        late += 1
    a = Run(fences=fences).feed(*clean)
    b = Run(fences=fences).feed(*noisy)
    assert len(a.kinds()) >= 8
    assert b.events == a.events
    assert b.state.late_fixes == late
    b.state.late_fixes = 0
    assert b.state == a.state
