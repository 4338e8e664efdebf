"""The part of a model card the agent relies on; the rest (metrics, data) is for people."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.inference.errors import ModelLoadError

CARD_FILE = "card.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SelfTest:
    """Inputs and the probabilities the exported model gave for them at training time."""

    inputs: list[list[float]]
    probabilities: list[list[float]]
    tolerance: float = 1e-4


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    sha256: str
    feature_set: str
    n_features: int
    classes: tuple[str, ...]
    selftest: SelfTest
    onnx_file: str = "model.onnx"
    input_name: str = "features"
    probabilities_output: str = "probabilities"

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelCard:
        st = raw["selftest"]
        card = cls(
            name=str(raw["name"]),
            version=str(raw["version"]),
            sha256=str(raw["sha256"]),
            feature_set=str(raw["feature_set"]),
            n_features=int(raw["n_features"]),
            classes=tuple(str(c) for c in raw["classes"]),
            selftest=SelfTest(
                inputs=[[float(v) for v in row] for row in st["inputs"]],
                probabilities=[[float(v) for v in row] for row in st["probabilities"]],
                tolerance=float(st.get("tolerance", 1e-4)),
            ),
            onnx_file=str(raw.get("onnx_file", "model.onnx")),
            input_name=str(raw.get("input_name", "features")),
            probabilities_output=str(raw.get("probabilities_output", "probabilities")),
        )
        if not _SHA256.match(card.sha256):
            raise ValueError(f"sha256 {card.sha256!r} is not 64 hex digits")
        if card.n_features <= 0 or len(card.classes) < 2:
            raise ValueError("card needs n_features > 0 and at least two classes")
        if "/" in card.onnx_file or card.onnx_file.startswith("."):
            raise ValueError(f"onnx_file {card.onnx_file!r} must be a plain file name")
        return card


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
        return ModelCard.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"unreadable model card {path}: {err}") from err
