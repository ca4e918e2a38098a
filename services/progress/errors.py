"""Errors of the progress service: dead-letter reasons and HTTP refusals."""

from __future__ import annotations

from shared.errors import InvalidMessageError, PermanentError


class StatementEvidenceError(InvalidMessageError):
    """A statement envelope whose payload is not a usable statement."""

    reason = "bad_statement"


class FrameworkConflictError(PermanentError):
    """A framework version already stored with different content (versions are immutable)."""

    reason = "framework_conflict"


class ApiError(PermanentError):
    """An HTTP refusal with a status and a stable reason."""

    status = 400
    reason = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if reason is not None:
            self.reason = reason
