"""Domain errors. One FastAPI handler (api/errors.py) renders them with the status code and the
``X-Error-Code`` / ``X-Error-Message`` headers that Hugging Face clients understand."""

from __future__ import annotations


class SpacehubError(Exception):
    """An error a user can cause and fix; `message` is shown to them as is."""

    status_code = 400
    error_code: str | None = None

    def __init__(self, message: str, *, error_code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code
        if status_code is not None:
            self.status_code = status_code


class BadRequest(SpacehubError):
    status_code = 400
    error_code = "BadRequest"


class Unauthorized(SpacehubError):
    status_code = 401
    error_code = "Unauthorized"


class Forbidden(SpacehubError):
    status_code = 403
    error_code = "Forbidden"


class NotFound(SpacehubError):
    status_code = 404
    error_code = "NotFound"


class RepoNotFound(NotFound):
    error_code = "RepoNotFound"


class RevisionNotFound(NotFound):
    error_code = "RevisionNotFound"


class EntryNotFound(NotFound):
    error_code = "EntryNotFound"


class Conflict(SpacehubError):
    status_code = 409
    error_code = "Conflict"


class PayloadTooLarge(SpacehubError):
    status_code = 413
    error_code = "PayloadTooLarge"


class Unsupported(SpacehubError):
    """A Hugging Face feature spacehub does not offer (dev mode, volumes, replicas...)."""

    status_code = 400
    error_code = "NotSupported"
