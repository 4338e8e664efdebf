"""Local ONNX inference on the vehicle: models as plugins with a typed config, warm-up at load,
a self-test, and an atomic swap for over-the-air updates.

Feature extraction lives here (numpy only) so the agent and the training code compute the very
same numbers; training imports it, the agent never imports training code, sklearn or cloud.
"""

from edge_agent.inference.config import (
    ModelConfig,
    OnnxModelConfig,
    RulesModelConfig,
    parse_model_config,
)
from edge_agent.inference.errors import ConfigError, InferenceError, ModelLoadError, SelfTestError
from edge_agent.inference.runtime import Classifier, load_model
from edge_agent.inference.slot import ModelSlot, SwapResult

__all__ = [
    "Classifier",
    "ConfigError",
    "InferenceError",
    "ModelConfig",
    "ModelLoadError",
    "ModelSlot",
    "OnnxModelConfig",
    "RulesModelConfig",
    "SelfTestError",
    "SwapResult",
    "load_model",
    "parse_model_config",
]
