"""The demand model: card, parity of the float64-grouped export, the service's feature path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cloud.models_service.demand_features import features_for_hour
from edge_agent.inference.card import sha256_file
from models.demand.features import FEATURE_NAMES, dataset, features
from models.demand.history import simulate_history
from models.demand.train import PARITY_TOLERANCE, onnx_predict
from models.training.split_trees import split_regressor
from models.training.train import MODELS_ROOT

CARD = json.loads((MODELS_ROOT / "demand" / "card.json").read_text())


@pytest.fixture(scope="module")
def history():  # type: ignore[no-untyped-def]
    return simulate_history(5, 6)


def test_card_sha256_and_contents() -> None:
    assert sha256_file(MODELS_ROOT / "demand" / CARD["onnx_file"]) == CARD["sha256"]
    assert [i["name"] for i in CARD["inputs"]] == list(FEATURE_NAMES)
    assert all(i["unit"] for i in CARD["inputs"])
    assert CARD["parity_max_abs_diff"] <= 1e-5
    h = CARD["headline"]
    assert h["metric"] == "mae"
    assert h["value"] < h["baseline"]


def test_card_selftest_reproduces() -> None:
    got = onnx_predict(
        (MODELS_ROOT / "demand" / "model.onnx").read_bytes(),
        np.array(CARD["selftest"]["inputs"], dtype=np.float32),
    )
    np.testing.assert_allclose(got, CARD["selftest"]["outputs"], atol=1e-9)


def test_grouped_export_matches_sklearn_within_1e5(history) -> None:  # type: ignore[no-untyped-def]
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import HistGradientBoostingRegressor

    x, y = dataset(history.counts, range(4 * 168, 5 * 168), history.start_weekday)
    xt, _ = dataset(history.counts, range(5 * 168, 6 * 168), history.start_weekday)
    model = HistGradientBoostingRegressor(max_iter=60, max_leaf_nodes=31, random_state=1)
    model.fit(x, y)
    onx = to_onnx(
        model,
        initial_types=[("features", FloatTensorType([None, x.shape[1]]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    got = onnx_predict(split_regressor(onx, 10).SerializeToString(), xt)
    assert got.shape == (len(xt),)
    assert float(np.max(np.abs(got - model.predict(xt)))) <= PARITY_TOLERANCE


@pytest.mark.parametrize("t", [4 * 168, 4 * 168 + 7, 5 * 168 + 23, 6 * 168 - 1])
def test_service_features_equal_training_features(history, t: int) -> None:  # type: ignore[no-untyped-def]
    want = features(history.counts, t, history.start_weekday)
    for c in (0, 17, 36):
        got = features_for_hour(
            history.counts[:t, c], t % 24, ((t // 24) + history.start_weekday) % 7
        )
        np.testing.assert_array_equal(got, want[c])


def test_service_features_refuse_short_history() -> None:
    with pytest.raises(ValueError, match="672"):
        features_for_hour(np.ones(100), 7, 1)
