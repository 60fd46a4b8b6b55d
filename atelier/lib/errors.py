"""Typed errors with stable codes. App code raises these; `atelier.lib.api` turns them into the
JSON envelope and the pages turn them into a message, each in one place."""

from __future__ import annotations

from typing import Any


class AtelierError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class ValidationFailed(AtelierError):
    status = 400
    code = "validation_error"


class Unauthorized(AtelierError):
    status = 401
    code = "unauthorized"


class Forbidden(AtelierError):
    status = 403
    code = "forbidden"


class NotFound(AtelierError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AtelierError):
    status = 405
    code = "method_not_allowed"


class Conflict(AtelierError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AtelierError):
    status = 413
    code = "payload_too_large"


class RateLimited(AtelierError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, limit: int, reset: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after
        self.limit = limit
        self.reset = reset


class ServiceUnavailable(AtelierError):
    status = 503
    code = "service_unavailable"
