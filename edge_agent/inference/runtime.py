"""Model runtime plugins: ONNX (onnxruntime) and the threshold rules, chosen by config ``type``.

A plugin takes windows (aligned IMU windows, or raw OBD windows), extracts the features its card
names, and returns class probabilities. Loading warms the session up and runs the card's
self-test, so a model that would answer wrongly never becomes active.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge_agent.inference import imu_features, obd_features
from edge_agent.inference.card import ModelCard, read_card, sha256_file
from edge_agent.inference.classes import ENGINE_CLASSES, IMU_CLASSES
from edge_agent.inference.config import ModelConfig, OnnxModelConfig, RulesModelConfig
from edge_agent.inference.errors import InputError, ModelLoadError, SelfTestError
from edge_agent.inference.rules import engine_rules, harsh_driving_rules

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]

# feature set name -> extractor from the plugin's window type to float32 feature rows
FEATURE_SETS: dict[str, Callable[[Any], F32]] = {
    imu_features.FEATURE_SET: imu_features.features,
    obd_features.FEATURE_SET: lambda w: obd_features.features(np.asarray(w, dtype=np.float64)),
}


class Classifier(Protocol):
    name: str
    version: str
    classes: tuple[str, ...]

    def classify(self, windows: Any) -> F32:
        """Class probabilities, one row per window."""
        ...


class OnnxClassifier:
    """An exported sklearn model run by onnxruntime, single-threaded by default."""

    def __init__(self, config: OnnxModelConfig) -> None:
        card = read_card(config.path)
        onnx_path = config.path / card.onnx_file
        try:
            digest = sha256_file(onnx_path)
        except OSError as err:
            raise ModelLoadError(f"{config.name}: cannot read {onnx_path}: {err}") from err
        if digest != card.sha256:
            raise ModelLoadError(f"{config.name}: sha256 {digest} does not match its card")
        if card.feature_set not in FEATURE_SETS:
            raise ModelLoadError(f"{config.name}: unknown feature set {card.feature_set}")
        self._run: Callable[[F32], Any] = self._numpy_or_none(config, card, onnx_path) or (
            self._onnxruntime(config, card, onnx_path)
        )
        self.card: ModelCard = card
        self.name = card.name
        self.version = card.version
        self.classes = tuple(card.classes)
        self._extract = FEATURE_SETS[card.feature_set]
        self._warm_up(config.warmup_runs)
        self.self_test()

    def _numpy_or_none(
        self, config: OnnxModelConfig, card: ModelCard, onnx_path: Path
    ) -> Callable[[F32], Any] | None:
        if config.runtime == "onnxruntime":
            return None
        from edge_agent.inference.onnx_trees import TreeEnsemble, UnsupportedModelError

        try:
            trees = TreeEnsemble(onnx_path, card.input_name, card.probabilities_output)
        except (UnsupportedModelError, OSError) as err:
            if config.runtime == "numpy":
                raise ModelLoadError(f"{config.name}: numpy runtime: {err}") from err
            log.info("%s: %s; using onnxruntime", config.name, err)
            return None
        self.providers: tuple[str, ...] = ("numpy-trees",)
        return trees.run

    def _onnxruntime(
        self, config: OnnxModelConfig, card: ModelCard, onnx_path: Path
    ) -> Callable[[F32], Any]:
        import onnxruntime as ort  # imported here: the rules plugin must work without it

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = config.intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Small tree models on a busy 2-core device: no arena or memory-pattern planning (no
        # gain at this size), and no thread spinning (idle pools spinning on a loaded machine
        # were what set the p99).
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        available = set(ort.get_available_providers())
        providers = [p for p in config.providers if p in available] or ["CPUExecutionProvider"]
        try:
            session = ort.InferenceSession(str(onnx_path), opts, providers=providers)
        except Exception as err:  # onnxruntime raises its own untyped errors on bad graphs
            raise ModelLoadError(f"{config.name}: onnxruntime refused {onnx_path}: {err}") from err
        self.providers = tuple(session.get_providers())
        outputs, name = [card.probabilities_output], card.input_name
        return lambda x: session.run(outputs, {name: x})[0]

    def predict_features(self, x: F32) -> F32:
        if x.ndim != 2 or x.shape[1] != self.card.n_features:
            raise InputError(f"{self.name}: expected (n, {self.card.n_features}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise InputError(f"{self.name}: non-finite features")
        probs: F32 = np.asarray(self._run(x), dtype=np.float32)
        return probs

    def classify(self, windows: Any) -> F32:
        return self.predict_features(self._extract(windows))

    def _warm_up(self, runs: int) -> None:
        zeros = np.zeros((1, self.card.n_features), dtype=np.float32)
        try:
            for _ in range(runs):
                self.predict_features(zeros)
        except Exception as err:
            raise ModelLoadError(f"{self.name}: warm-up inference failed: {err}") from err

    def self_test(self) -> None:
        """Raise SelfTestError unless the card's inputs give the card's probabilities."""
        t = self.card.selftest
        x = np.asarray(t.inputs, dtype=np.float32)
        try:
            got = self.predict_features(x)
        except Exception as err:
            raise SelfTestError(f"{self.name}: self-test inference failed: {err}") from err
        want = np.asarray(t.probabilities, dtype=np.float32)
        if got.shape != want.shape or got.shape[1] != len(self.classes):
            raise SelfTestError(f"{self.name}: self-test shape {got.shape} != {want.shape}")
        err_max = float(np.max(np.abs(got - want)))
        if not err_max <= t.tolerance:
            raise SelfTestError(f"{self.name}: self-test off by {err_max:.2e} > {t.tolerance}")


class RulesClassifier:
    """The tracker thresholds as a plugin; its probabilities are one-hot."""

    version = "rules-1"

    def __init__(self, config: RulesModelConfig) -> None:
        self.name = config.name
        if config.name == "harsh_driving":
            self.classes = IMU_CLASSES
            self._rules: Callable[[Any], npt.NDArray[np.int64]] = harsh_driving_rules
        else:
            self.classes = ENGINE_CLASSES
            self._rules = lambda w: engine_rules(np.asarray(w, dtype=np.float64))

    def classify(self, windows: Any) -> F32:
        idx = self._rules(windows)
        out = np.zeros((len(idx), len(self.classes)), dtype=np.float32)
        out[np.arange(len(idx)), idx] = 1.0
        return out


PLUGINS: dict[str, Callable[[Any], Any]] = {
    "onnx": OnnxClassifier,
    "rules": RulesClassifier,
}


def load_model(config: ModelConfig) -> Classifier:
    """Build the plugin the config's ``type`` names (loaded, warmed up, self-tested)."""
    model: Classifier = PLUGINS[config.type](config)
    log.info("model %s %s loaded (%s)", model.name, model.version, config.type)
    return model
