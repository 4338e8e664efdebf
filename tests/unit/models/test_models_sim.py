"""The simulator is reproducible for a seed, and its streams are physically plausible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.sim import IMU_CLASSES, ImuSample, ObdSample, Trip, TripConfig
from models.sim.labels import G

SHORT = TripConfig(length_m=1500.0)


@pytest.fixture(scope="module")
def trip_data():  # type: ignore[no-untyped-def]
    return Trip(7, config=SHORT).data()


def test_same_seed_same_streams(trip_data) -> None:  # type: ignore[no-untyped-def]
    again = Trip(7, config=SHORT).data()
    assert np.array_equal(trip_data.acc, again.acc)
    assert np.array_equal(trip_data.gyro, again.gyro)
    assert np.array_equal(trip_data.imu_label, again.imu_label)
    assert np.array_equal(trip_data.coolant_c, again.coolant_c)
    assert np.array_equal(trip_data.lat, again.lat)
    assert trip_data.events == again.events


def test_other_seed_other_trip(trip_data) -> None:  # type: ignore[no-untyped-def]
    other = Trip(8, config=SHORT).data()
    n = min(len(other.acc), len(trip_data.acc))
    assert not np.array_equal(other.acc[:n], trip_data.acc[:n])


def test_stream_is_time_ordered_and_matches_arrays(trip_data) -> None:  # type: ignore[no-untyped-def]
    samples = list(itertools.islice(Trip(7, config=SHORT).stream(), 3000))
    times = [s.t for s in samples]
    assert times == sorted(times)
    imu = [s for s in samples if isinstance(s, ImuSample)]
    assert any(isinstance(s, ObdSample) for s in samples)
    assert imu[5].ax == pytest.approx(float(trip_data.acc[5, 0]))
    assert len(imu) > 2500  # 100 Hz dominates


def test_accelerometer_reads_gravity_at_rest(trip_data) -> None:  # type: ignore[no-untyped-def]
    norm = np.linalg.norm(trip_data.acc[:100].astype(np.float64), axis=1)  # parked at the start
    assert abs(float(np.median(norm)) - G) < 0.5


def test_obd_values_in_pid_ranges(trip_data) -> None:  # type: ignore[no-untyped-def]
    d = trip_data
    assert d.speed_kmh.min() >= 0
    assert d.speed_kmh.max() < 200
    assert d.rpm.min() >= 500
    assert d.rpm.max() < 7000
    assert np.all((d.fuel_pct >= 0) & (d.fuel_pct <= 100))
    assert np.all(d.coolant_c == np.round(d.coolant_c))  # PID 0x05 is whole degrees


def test_labels_match_event_list() -> None:
    d = Trip(3, config=TripConfig(length_m=4000.0)).data()
    kinds = {e.kind for e in d.events}
    for cls in IMU_CLASSES[1:]:
        assert (cls in kinds) == bool(np.any(d.imu_label == IMU_CLASSES.index(cls)))


def test_gps_moves_as_fast_as_the_vehicle() -> None:
    d = Trip(5, config=TripConfig(length_m=2000.0, gps_hz=10.0)).data()
    assert np.allclose(np.diff(d.gps_t), 0.1)
    lat0 = np.radians(d.lat[0])
    dn = np.diff(d.lat) * 111_320.0
    de = np.diff(d.lon) * 111_320.0 * np.cos(lat0)
    travelled = float(np.hypot(dn, de).sum())
    assert travelled == pytest.approx(d.distance_m, rel=0.25)  # GNSS noise adds a little
    assert np.all((d.gps_track >= 0) & (d.gps_track < 360))


@pytest.mark.parametrize(
    "kwargs",
    [{"gps_hz": 20.0}, {"length_m": 10.0}, {"road_kind": "track"}, {"engine_fault_prob": 2.0}],
)
def test_trip_config_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        TripConfig(**kwargs)  # type: ignore[arg-type]
