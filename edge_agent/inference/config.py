"""Typed model configurations keyed on ``type``: each names one runtime plugin.

Plain dataclasses validated in ``__post_init__`` (no pydantic here: on the vehicle its import
alone costs about 12 MB of the agent's memory budget).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edge_agent.inference.card import CARD_FILE
from edge_agent.inference.errors import ConfigError

MODEL_NAMES = ("harsh_driving", "engine_anomaly")
# Who evaluates an ONNX file: onnxruntime (the agent's default); numpy (``onnx_trees``: one
# tree-ensemble classifier, about 30 MB less resident memory); auto: numpy when the graph is one
# it supports, else onnxruntime.
RUNTIMES = ("onnxruntime", "numpy", "auto")


@dataclass(frozen=True)
class OnnxModelConfig:
    """An exported model folder (``model.onnx`` + ``card.json``) run by onnxruntime."""

    name: str
    path: Path  # the model folder
    # Tried in order; those this onnxruntime build lacks are skipped, CPU is the last resort.
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 1
    warmup_runs: int = 3
    runtime: str = "onnxruntime"  # see RUNTIMES
    type: Literal["onnx"] = "onnx"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "providers", tuple(self.providers))
        if not self.name:
            raise ConfigError("model name is empty")
        if not 1 <= self.intra_op_threads <= 8:
            raise ConfigError(f"intra_op_threads {self.intra_op_threads} not in 1..8")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime {self.runtime!r} not one of {', '.join(RUNTIMES)}")
        if not 0 <= self.warmup_runs <= 100:
            raise ConfigError(f"warmup_runs {self.warmup_runs} not in 0..100")

    @property
    def card_path(self) -> Path:
        return self.path / CARD_FILE


@dataclass(frozen=True)
class RulesModelConfig:
    """The tracker threshold rules: a fallback when no model is installed or all fail."""

    name: str
    type: Literal["rules"] = "rules"

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ConfigError(f"no rules for model {self.name!r}")


ModelConfig = OnnxModelConfig | RulesModelConfig
CONFIG_TYPES: dict[str, type[OnnxModelConfig] | type[RulesModelConfig]] = {
    "onnx": OnnxModelConfig,
    "rules": RulesModelConfig,
}


def parse_model_config(raw: Mapping[str, Any]) -> ModelConfig:
    """Build the config class that ``raw["type"]`` names; unknown keys are refused."""
    kind = raw.get("type")
    cls = CONFIG_TYPES.get(str(kind))
    if cls is None:
        raise ConfigError(f"unknown model type {kind!r}; known: {sorted(CONFIG_TYPES)}")
    fields = set(cls.__dataclass_fields__)
    extra = set(raw) - fields
    if extra:
        raise ConfigError(f"unknown keys for {kind} model: {sorted(extra)}")
    try:
        return cls(**raw)
    except TypeError as err:
        raise ConfigError(f"bad {kind} model config: {err}") from err
