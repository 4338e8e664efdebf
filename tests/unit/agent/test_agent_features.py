"""The vectorised IMU features equal their one-call-per-quantity definition (``imu_v1``)."""

from __future__ import annotations

import numpy as np

from edge_agent.inference import imu_features


def test_fast_features_equal_the_reference() -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        n_w = 1 + trial % 3
        scale = (0.05, 1.0, 8.0, 40.0)[trial % 4]
        acc = rng.normal(0, scale, (n_w, 200, 3)) + np.array([0, 0, 9.81])
        gyro = rng.normal(0, 0.3, (n_w, 200, 3))
        frames = np.stack([np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(n_w)])
        w = imu_features.align(
            acc, gyro, frames, np.tile([0, 0, 9.81], (n_w, 1)), np.zeros((n_w, 3))
        )
        fast, ref = imu_features.features(w), imu_features.features_reference(w)
        assert fast.shape == (n_w, len(imu_features.FEATURE_NAMES))
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-6)


def test_features_of_a_hard_brake() -> None:
    acc = np.zeros((1, 200, 3))
    acc[0, 100:150, 0] = -0.6 * imu_features.G  # 0.5 s at -0.6 g, forward axis
    w = imu_features.align(
        acc, np.zeros((1, 200, 3)), np.eye(3)[None], np.zeros((1, 3)), np.zeros((1, 3))
    )
    f = dict(zip(imu_features.FEATURE_NAMES, imu_features.features(w)[0], strict=True))
    assert f["long_min"] == np.float32(-0.6 * imu_features.G)
    assert f["long_s_min"] < -0.5 * imu_features.G
    assert 0.1 < f["frac_long_s_below_0.3g"] < 0.3
    assert f["long_second_minus_first"] < 0
