"""The numpy tree-ensemble evaluator against onnxruntime on the real models, and the runtime
choice: numpy, onnxruntime, auto (numpy where it can, onnxruntime otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge_agent.inference import ModelLoadError, OnnxModelConfig, load_model
from edge_agent.inference.onnx_trees import TreeEnsemble, UnsupportedModelError, read_nodes

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "models" / "onnx"


@pytest.mark.parametrize("name", ["harsh_driving", "engine_anomaly"])
def test_numpy_trees_equal_onnxruntime(name: str) -> None:
    path = MODELS / name / "model.onnx"
    card = json.loads((MODELS / name / "card.json").read_text())
    x = np.asarray(card["selftest"]["inputs"], dtype=np.float32)
    rng = np.random.default_rng(3)
    noisy = x[rng.integers(0, len(x), 500)] * rng.normal(1.0, 0.3, (500, x.shape[1]))
    xs = np.concatenate([x, noisy.astype(np.float32), np.zeros((1, x.shape[1]), np.float32)])
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["probabilities"], {"features": xs}
    )[0]
    got = TreeEnsemble(path, "features", "probabilities").run(xs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert (got.argmax(1) == want.argmax(1)).all()


def test_other_graphs_are_refused_and_auto_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eta = MODELS / "eta" / "model.onnx"
    assert "TreeEnsembleRegressor" in [n.op_type for n in read_nodes(eta.read_bytes())]
    with pytest.raises(UnsupportedModelError, match="not one tree ensemble"):
        TreeEnsemble(eta, "features", "probabilities")
    broken = tmp_path / "m.onnx"
    broken.write_bytes((MODELS / "harsh_driving" / "model.onnx").read_bytes()[:5000])
    with pytest.raises(UnsupportedModelError):
        TreeEnsemble(broken, "features", "probabilities")
    # a model folder whose graph the evaluator cannot run: "numpy" refuses, "auto" uses ort
    folder = tmp_path / "harsh_driving"
    folder.mkdir()
    src = MODELS / "harsh_driving"
    (folder / "model.onnx").write_bytes((src / "model.onnx").read_bytes())
    (folder / "card.json").write_text((src / "card.json").read_text())
    auto = load_model(OnnxModelConfig(name="harsh_driving", path=folder, runtime="auto"))
    assert getattr(auto, "providers", ()) == ("numpy-trees",)

    def refuse(self: TreeEnsemble, *_a: object) -> None:
        raise UnsupportedModelError("pretend: an op it does not know")

    monkeypatch.setattr(TreeEnsemble, "__init__", refuse)
    with pytest.raises(ModelLoadError, match="numpy runtime"):
        load_model(OnnxModelConfig(name="harsh_driving", path=folder, runtime="numpy"))
    fallback = load_model(OnnxModelConfig(name="harsh_driving", path=folder, runtime="auto"))
    assert "CPUExecutionProvider" in getattr(fallback, "providers", ())


def test_an_agent_on_auto_never_imports_onnxruntime(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from edge_agent.agent import Agent; "
        "from edge_agent.settings import load_settings; "
        f"s = load_settings(environ={{}}, tenant='a', vehicle='b', mqtt_username='u', "
        f"mqtt_password='k8#Lq-unit', state_dir=Path({str(tmp_path)!r}), "
        f"models_dir=Path({str(MODELS)!r}), inference_runtime='auto'); "
        "a = Agent(s, sources=False); print(sorted(a.slots), 'onnxruntime' in sys.modules); "
        "a.close()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    assert out == "['engine_anomaly', 'harsh_driving'] False"


def test_the_agent_default_runtime_is_onnxruntime(tmp_path: Path) -> None:
    from edge_agent.agent import Agent
    from edge_agent.settings import load_settings

    s = load_settings(
        environ={}, tenant="a", vehicle="b", mqtt_username="u", mqtt_password="k8#Lq-unit",
        state_dir=tmp_path, models_dir=MODELS,
    )  # fmt: skip
    assert s.inference_runtime == "onnxruntime"
    agent = Agent(s, sources=False)
    try:
        for name in ("harsh_driving", "engine_anomaly"):
            model = agent.slots[name].active
            assert "CPUExecutionProvider" in getattr(model, "providers", ())
    finally:
        agent.close()
