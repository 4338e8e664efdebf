"""Errors of the model service: bad requests (the caller's fault) and unloadable models."""

from __future__ import annotations


class ModelServiceError(Exception):
    """Base of the service's errors. ``retriable``: the same call may succeed later."""

    retriable = False


class InputError(ModelServiceError):
    """A request the models cannot answer (out of range, wrong shape); answered with a 4xx."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ModelLoadError(ModelServiceError):
    """A model file that is missing, does not match its card, or fails to load."""

    retriable = True


class ModelUnavailableError(ModelServiceError):
    """No usable version of a model is loaded; the service answers 503."""

    retriable = True


class ClientError(ModelServiceError):
    """A call from `ModelServiceClient` failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retriable = status == 0 or status >= 500
