"""Settings of the model service, from ``FLOTA_MODELS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The source tree's models/onnx: where `flota models train` writes (an installed package ships
# the same files, as package data, in the same place relative to this file).
DEFAULT_MODELS_ROOT = Path(__file__).resolve().parents[2] / "models" / "onnx"


class ModelsServiceSettings(BaseSettings):
    """Where the models are, where to listen, how often to look for new model files."""

    model_config = SettingsConfigDict(env_prefix="FLOTA_MODELS_", extra="ignore", frozen=True)

    root: Path = Field(default=DEFAULT_MODELS_ROOT)
    host: str = "127.0.0.1"
    port: int = Field(default=8095, ge=0, le=65535)
    reload_interval_s: float = Field(default=2.0, gt=0)
    max_legs: int = Field(default=500, ge=1)  # per /v1/eta request
    max_cells: int = Field(default=1000, ge=1)  # per /v1/demand request
    threads: int = Field(default=1, ge=1)  # onnxruntime intra-op threads per model
