"""Errors of the ingest service; each maps to one HTTP status and a stable rule id."""

from __future__ import annotations

from collections.abc import Sequence

from shared.errors import PermanentError
from shared.xapi import Violation


class IngestError(PermanentError):
    """Bad input: answered with ``status`` and a JSON body; never retried."""

    status: int = 400
    reason = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        rule: str | None = None,
        violations: Sequence[Violation] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule or self.reason
        self.violations = list(violations)

    def body(self) -> dict[str, object]:
        return {
            "error": self.message,
            "rule": self.rule,
            "violations": [
                {"path": v.path, "rule": v.rule, "message": v.message} for v in self.violations
            ],
        }


class BadRequestError(IngestError):
    status = 400
    reason = "bad_request"


class InvalidStatementError(BadRequestError):
    reason = "invalid_statement"


class UnauthorizedError(IngestError):
    status = 401
    reason = "unauthorized"


class NotFoundError(IngestError):
    status = 404
    reason = "not_found"


class ConflictError(IngestError):
    """A statement id already stored with different content."""

    status = 409
    reason = "conflict"


class RequestTimeoutError(IngestError):
    """The request body did not arrive in time (a slow or stalled client)."""

    status = 408
    reason = "timeout"


class PayloadTooLargeError(IngestError):
    status = 413
    reason = "too_large"


class NotImplementedYetError(IngestError):
    """A part of the xAPI resource this LRS does not offer (statement queries)."""

    status = 501
    reason = "not_implemented"
