"""Errors of the optimizer layer; each says whether retrying the same call could succeed."""

from __future__ import annotations


class OptimizerError(Exception):
    """Base of every optimizer error."""

    retriable: bool = False


class ModelError(OptimizerError, ValueError):
    """The problem as built is inconsistent (bad index, negative amount, unknown id...)."""


class ParamsError(OptimizerError, ValueError):
    """Solver parameters or a stopping rule are out of range."""


class ProblemFormatError(OptimizerError, ValueError):
    """A problem file cannot be read (Solomon text or our JSON format)."""


class EngineError(OptimizerError):
    """An engine crashed or returned nothing; another engine may still answer."""

    retriable = True


class NoEngineError(OptimizerError):
    """No configured engine supports the constraints this problem uses."""
