"""One exception family for the whole project.

Every error a user can cause is a ``ClipSearchError``: it carries a short
machine-readable ``code`` and the HTTP status the web API answers with. CLIs
turn it into a one-line message and a non-zero exit code.
"""

from __future__ import annotations


class ClipSearchError(Exception):
    """Base class: a failure with a user-facing message."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(ClipSearchError):
    """The caller sent something unusable (bad query, bad parameter)."""

    status = 400
    code = "invalid_input"


class NotFound(ClipSearchError):
    """The requested clip, file or resource does not exist."""

    status = 404
    code = "not_found"


class DatasetError(ClipSearchError):
    """A dataset folder or split file is missing or malformed."""

    status = 400
    code = "dataset_error"


class VideoDecodeError(ClipSearchError):
    """A video file could not be opened or decoded; the message names the file."""

    status = 422
    code = "video_decode_error"

    def __init__(self, path: object, reason: str):
        super().__init__(f"cannot decode {path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # picklable across worker processes (the default would call __init__(message))
        return (type(self), (self.path, self.reason))


class ModelLoadError(ClipSearchError):
    """A CLIP checkpoint could not be loaded."""

    status = 500
    code = "model_load_error"


class StoreError(ClipSearchError):
    """The vector store refused or failed an operation."""

    status = 503
    code = "store_unavailable"


class StoreUnavailable(StoreError):
    """The store could not be reached, timed out or answered 5xx: worth trying again."""
