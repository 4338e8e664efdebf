"""The agent's model runtime: load, warm up, self-test, atomic swap, roll back, rules fallback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_agent.inference import (
    ModelLoadError,
    ModelSlot,
    OnnxModelConfig,
    RulesModelConfig,
    SelfTestError,
    load_model,
)
from edge_agent.inference.card import sha256_file
from edge_agent.inference.imu_features import AlignedWindows
from edge_agent.inference.runtime import OnnxClassifier
from models.training.train import MODELS_ROOT

G = 9.80665


def _copy(name: str, tmp_path: Path, tag: str) -> Path:
    dst = tmp_path / f"{name}-{tag}"
    shutil.copytree(MODELS_ROOT / name, dst)
    return dst


def _edit_card(model_dir: Path, **changes: object) -> None:
    card = json.loads((model_dir / "card.json").read_text())
    card.update(changes)
    (model_dir / "card.json").write_text(json.dumps(card))


def _brake_window() -> AlignedWindows:
    lin = np.zeros((1, 200, 3))
    lin[0, 50:180, 0] = -0.6 * G  # 1.3 s of hard braking
    return AlignedWindows(lin=lin, yaw=np.zeros((1, 200)), gyro_norm=np.zeros((1, 200)))


def test_loads_warms_up_and_classifies() -> None:
    clf = load_model(OnnxModelConfig(name="harsh_driving", path=MODELS_ROOT / "harsh_driving"))
    assert isinstance(clf, OnnxClassifier)
    assert clf.providers[-1] == "CPUExecutionProvider"
    probs = clf.classify(_brake_window())
    assert probs.shape == (1, 5)
    assert abs(float(probs.sum()) - 1.0) < 1e-5
    assert clf.classes[int(np.argmax(probs))] == "harsh_brake"


def test_swap_is_atomic_and_rolls_back_on_failed_self_test(tmp_path: Path) -> None:
    slot = ModelSlot(OnnxModelConfig(name="harsh_driving", path=MODELS_ROOT / "harsh_driving"))
    before = slot.active
    bad = _copy("harsh_driving", tmp_path, "wrong-selftest")
    card = json.loads((bad / "card.json").read_text())
    probs = np.asarray(card["selftest"]["probabilities"])
    _edit_card(
        bad,
        version="9.9.9",
        selftest={**card["selftest"], "probabilities": probs[:, ::-1].tolist()},
    )
    result = slot.swap(OnnxModelConfig(name="harsh_driving", path=bad))
    assert not result.ok
    assert "self-test" in (result.error or "")
    assert slot.active is before
    assert slot.failed_swaps == 1

    good = _copy("harsh_driving", tmp_path, "next")
    _edit_card(good, version="1.0.1")
    result = slot.swap(OnnxModelConfig(name="harsh_driving", path=good))
    assert result.ok
    assert result.active_version == "1.0.1"
    assert result.previous_version == before.version
    assert slot.active.version == "1.0.1"
    assert slot.rollback().active_version == before.version


def test_broken_model_file_is_refused(tmp_path: Path) -> None:
    slot = ModelSlot(OnnxModelConfig(name="engine_anomaly", path=MODELS_ROOT / "engine_anomaly"))
    before = slot.active
    broken = _copy("engine_anomaly", tmp_path, "broken")
    data = bytearray((broken / "model.onnx").read_bytes())
    (broken / "model.onnx").write_bytes(bytes(data[: len(data) // 2]))  # a truncated download
    result = slot.swap(OnnxModelConfig(name="engine_anomaly", path=broken))
    assert not result.ok
    assert "sha256" in (result.error or "")
    # even with a card that vouches for the garbage, onnxruntime's refusal is caught
    _edit_card(broken, sha256=sha256_file(broken / "model.onnx"))
    with pytest.raises(ModelLoadError):
        OnnxClassifier(OnnxModelConfig(name="engine_anomaly", path=broken))
    assert not slot.swap(OnnxModelConfig(name="engine_anomaly", path=broken)).ok
    assert slot.active is before
    assert slot.classify(np.zeros((1, 60, 6))).shape == (1, 4)


def test_self_test_error_type(tmp_path: Path) -> None:
    bad = _copy("engine_anomaly", tmp_path, "bad")
    card = json.loads((bad / "card.json").read_text())
    _edit_card(
        bad,
        selftest={
            **card["selftest"],
            "tolerance": 0.0,
            "probabilities": (np.asarray(card["selftest"]["probabilities"]) + 0.01).tolist(),
        },
    )
    with pytest.raises(SelfTestError):
        OnnxClassifier(OnnxModelConfig(name="engine_anomaly", path=bad))


def test_rules_plugin_needs_no_model() -> None:
    rules = load_model(RulesModelConfig(name="harsh_driving"))
    assert rules.classes[int(np.argmax(rules.classify(_brake_window())))] == "harsh_brake"
    hot = np.zeros((1, 60, 6))
    hot[0, :, 2] = 110.0
    assert load_model(RulesModelConfig(name="engine_anomaly")).classify(hot)[0, 1] == 1.0


def test_agent_runtime_imports_no_training_code() -> None:
    code = (
        "import sys; from edge_agent.inference import ModelSlot, OnnxModelConfig;"
        f"ModelSlot(OnnxModelConfig(name='harsh_driving', path='{MODELS_ROOT / 'harsh_driving'}'));"
        "bad = [m for m in sys.modules"
        " if m.startswith(('sklearn', 'skl2onnx', 'models', 'cloud'))];"
        "print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_config_is_keyed_on_type() -> None:
    from edge_agent.inference import ConfigError, parse_model_config

    cfg = parse_model_config({"type": "onnx", "name": "harsh_driving", "path": "/m/hd"})
    assert isinstance(cfg, OnnxModelConfig)
    assert cfg.path == Path("/m/hd")
    assert cfg.intra_op_threads == 1
    assert isinstance(
        parse_model_config({"type": "rules", "name": "engine_anomaly"}), RulesModelConfig
    )
    for bad in (
        {"type": "tflite", "name": "x"},
        {"type": "onnx", "name": "x", "path": "/m", "gpu": True},
        {"type": "onnx", "name": "x", "path": "/m", "intra_op_threads": 0},
        {"type": "rules", "name": "eta"},
    ):
        with pytest.raises(ConfigError):
            parse_model_config(bad)


def test_unavailable_provider_falls_back_to_cpu() -> None:
    clf = OnnxClassifier(
        OnnxModelConfig(
            name="engine_anomaly",
            path=MODELS_ROOT / "engine_anomaly",
            providers=("NoSuchExecutionProvider", "CPUExecutionProvider"),
        )
    )
    assert clf.providers == ("CPUExecutionProvider",)
