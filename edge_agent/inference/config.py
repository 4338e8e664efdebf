"""Typed model configurations keyed on ``type``: each names one runtime plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.inference.card import CARD_FILE


class OnnxModelConfig(BaseModel):
    """An exported model folder (``model.onnx`` + ``card.json``) run by onnxruntime."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["onnx"] = "onnx"
    name: str
    path: Path  # the model folder
    # Tried in order; those this onnxruntime build lacks are skipped, CPU is the last resort.
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: Annotated[int, Field(ge=1, le=8)] = 1
    warmup_runs: Annotated[int, Field(ge=0, le=100)] = 3

    @property
    def card_path(self) -> Path:
        return self.path / CARD_FILE


class RulesModelConfig(BaseModel):
    """The tracker threshold rules: a fallback when no model is installed or all fail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["rules"] = "rules"
    name: Literal["harsh_driving", "engine_anomaly"]


ModelConfig = Annotated[OnnxModelConfig | RulesModelConfig, Field(discriminator="type")]
