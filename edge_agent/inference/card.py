"""The part of a model card the agent relies on; the rest (metrics, data) is for people."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.inference.errors import ModelLoadError

CARD_FILE = "card.json"


class SelfTest(BaseModel):
    """Inputs and the probabilities the exported model gave for them at training time."""

    inputs: list[list[float]]
    probabilities: list[list[float]]
    tolerance: float = 1e-4


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    version: str
    onnx_file: str = "model.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    feature_set: str
    n_features: int = Field(gt=0)
    classes: list[str]
    input_name: str = "features"
    probabilities_output: str = "probabilities"
    selftest: SelfTest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def read_card(model_dir: Path) -> ModelCard:
    """Parse ``card.json`` in a model folder; refuse a missing or malformed card."""
    path = model_dir / CARD_FILE
    try:
        return ModelCard.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as err:
        raise ModelLoadError(f"unreadable model card {path}: {err}") from err
