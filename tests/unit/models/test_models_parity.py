"""sklearn and onnxruntime agree on the test windows (a small model trained here, same recipe)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.training.datasets import split_windows
from models.training.export import to_onnx_bytes
from models.training.specs import SPECS
from models.training.splits import Split, split
from models.training.train import PARITY_TOLERANCE, fit, onnx_predict


@pytest.fixture(scope="module")
def small_data():  # type: ignore[no-untyped-def]
    train = Split("train", split("train").base, devices=6, trips_per_device=3, length_m=5000.0)
    test = Split("test", split("test").base, devices=1, trips_per_device=3, length_m=5000.0)
    return split_windows(train, keep_inputs=False), split_windows(test, keep_inputs=False)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_onnx_matches_sklearn_on_test(small_data, name: str) -> None:  # type: ignore[no-untyped-def]
    train, test = small_data
    spec = dataclasses.replace(SPECS[name], max_iter=40)  # same recipe, fewer trees: faster
    model = fit(spec, train[name])
    onnx_bytes = to_onnx_bytes(model, spec)
    x = test[name].x.astype(np.float32)
    assert len(x) > 30
    got = onnx_predict(onnx_bytes, x)
    want = model.predict_proba(x)
    assert got.shape == want.shape
    assert float(np.max(np.abs(got - want))) <= PARITY_TOLERANCE
