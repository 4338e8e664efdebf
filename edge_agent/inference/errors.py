"""Errors of the inference layer; ``retriable`` says whether trying again may help."""

from __future__ import annotations


class InferenceError(Exception):
    """Base of the inference layer's errors."""

    retriable = False


class ModelLoadError(InferenceError):
    """The model file or its card is missing, corrupt, or does not match (sha256, shape)."""


class SelfTestError(InferenceError):
    """The model loaded but its outputs on the card's self-test inputs are wrong."""


class InputError(InferenceError):
    """A window of the wrong shape or with non-finite values; the caller counts and skips it."""


class ConfigError(InferenceError):
    """A model configuration that cannot work (unknown type, bad values)."""
