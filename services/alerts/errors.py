"""Errors of the alerts service; the API answers each with its status and a JSON body."""

from __future__ import annotations

from shared.errors import PermanentError


class AlertsError(PermanentError):
    status: int = 400
    reason = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.message, "reason": self.reason}


class BadRequestError(AlertsError):
    status = 400
    reason = "bad_request"


class UnauthorizedError(AlertsError):
    status = 401
    reason = "unauthorized"


class NotFoundError(AlertsError):
    status = 404
    reason = "not_found"


class ConflictError(AlertsError):
    """A staff action not allowed in the alert's current status."""

    status = 409
    reason = "conflict"
