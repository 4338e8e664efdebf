"""Every shipped model has a card whose sha256 matches its file and whose metrics are complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.inference.card import read_card, sha256_file
from models.training.specs import SPECS
from models.training.train import MODELS_ROOT, PARITY_TOLERANCE

NAMES = sorted(SPECS)


@pytest.mark.parametrize("name", NAMES)
def test_card_sha256_matches_file(name: str) -> None:
    card = read_card(MODELS_ROOT / name)
    onnx = MODELS_ROOT / name / card.onnx_file
    assert sha256_file(onnx) == card.sha256
    assert onnx.stat().st_size < 2 * 1024 * 1024


@pytest.mark.parametrize("name", NAMES)
def test_card_states_what_a_reader_needs(name: str) -> None:
    raw = json.loads((MODELS_ROOT / name / "card.json").read_text())
    spec = SPECS[name]
    assert raw["classes"] == list(spec.classes)
    assert [i["name"] for i in raw["inputs"]] == list(spec.feature_names)
    assert all(i["unit"] for i in raw["inputs"])
    assert raw["opset"]["ai.onnx.ml"] >= 1
    assert raw["opset"][""] >= 13
    assert raw["parity_max_abs_diff"] <= PARITY_TOLERANCE
    for part in ("model", "baseline"):
        scores = raw["metrics"]["test"][part]
        assert set(scores["f1"]) == set(spec.classes)
        assert scores["false_alarms_per_1000km"] >= 0
    assert (MODELS_ROOT / name / "card.md").read_text().startswith(f"# Model card: {name}")


@pytest.mark.parametrize("name", NAMES)
def test_model_beats_its_baseline_on_test(name: str) -> None:
    h = json.loads((MODELS_ROOT / name / "card.json").read_text())["headline"]
    assert h["value"] > h["baseline"]


def test_cards_are_found_where_the_agent_looks() -> None:
    assert Path(MODELS_ROOT).name == "onnx"
    assert {p.name for p in MODELS_ROOT.iterdir() if (p / "card.json").exists()} >= set(NAMES)
