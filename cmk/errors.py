"""A small typed error hierarchy; every message tells the user what to do next."""

from __future__ import annotations

from typing import Any


class CmkError(Exception):
    """Base of every error raised by cmk; carries the service's code, status and correlation id."""

    hint = "Check the message above and the service's error code."

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        correlation_id: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.correlation_id = correlation_id
        self.target = target

    def __str__(self) -> str:
        details = [
            f"{name}={value}"
            for name, value in (
                ("code", self.code),
                ("status", self.status),
                ("target", self.target),
                ("correlation_id", self.correlation_id),
            )
            if value is not None
        ]
        return self.message + (f" [{', '.join(details)}]" if details else "")

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-safe data (for journals and reports)."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "code": self.code,
            "status": self.status,
            "correlation_id": self.correlation_id,
            "target": self.target,
        }


class ConfigurationError(CmkError, ValueError):
    """The settings are incomplete or inconsistent; fix the configuration and run again."""


class InvalidResourceIdError(ConfigurationError):
    """A resource id does not have the expected shape."""


class AuthenticationError(CmkError):
    """The credential could not obtain or present a valid token."""


class NotFoundError(CmkError):
    """The resource does not exist, or the caller may not see it."""


class ForbiddenError(CmkError):
    """The caller lacks the role or permission for this call."""


class ConflictError(CmkError):
    """The request conflicts with the resource's current state."""


class BusyError(ConflictError):
    """409 OperationNotStartable: another lifecycle operation runs on the environment; wait and retry."""


class PreconditionFailedError(CmkError):
    """The current state makes the requested change unsafe or impossible."""


class InvalidRequestError(CmkError):
    """The service refused the request as malformed or invalid (400)."""


class ThrottledError(CmkError):
    """429 after all retries; carries the service's Retry-After in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServiceError(CmkError):
    """The service failed (5xx) or answered something this client cannot read."""


class ConnectionFailedError(CmkError):
    """The service could not be reached (DNS, TLS, refused connection)."""


class OperationFailedError(CmkError):
    """A long-running operation ended in Failed; carries the operation handle when there is one."""

    def __init__(self, message: str, *, handle: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.handle = handle


class OperationTimeoutError(CmkError):
    """An operation did not finish within the deadline; it may still be running: resume with the handle."""

    def __init__(self, message: str, *, handle: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.handle = handle


# -- translation from the wire ----------------------------------------------------------------------------

_CORRELATION_HEADERS = (
    "x-ms-correlation-request-id",
    "x-ms-correlation-id",
    "x-ms-request-id",
    "x-ms-client-request-id",
)


def correlation_id_from(*header_sets: Any) -> str | None:
    """The first correlation / request id found in the given header mappings (response first)."""
    for headers in header_sets:
        if not headers:
            continue
        for name in _CORRELATION_HEADERS:
            value = headers.get(name)
            if value:
                return str(value)
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_error_body(data: Any) -> tuple[str | None, str | None]:
    """(code, message) from an ARM/Key Vault/BAP error envelope, or from a bare {code, message}."""
    if not isinstance(data, dict):
        return None, None
    error = data.get("error", data)
    if not isinstance(error, dict):
        return None, str(error)
    code = error.get("code")
    inner = error.get("innererror") or error.get("innerError")
    if isinstance(inner, dict) and inner.get("code") and code in (None, "Forbidden", "Conflict"):
        code = f"{code}/{inner['code']}" if code else inner["code"]
    return code, error.get("message")


def _hint(status: int | None, code: str | None, retry_after: float | None) -> str:
    if status == 401:
        return (
            "The token was refused: check tenant_id, client_id and the auth mode of these settings, "
            "and that the identity exists in the tenant."
        )
    if status == 403:
        return (
            "Grant this identity the role or access policy the call needs on the target "
            "(see docs), or run the step with the identity that holds it."
        )
    if status == 404:
        return (
            "Check the id or name. For Power Platform environments a 404 also means the caller lacks the "
            "Power Platform Administrator role."
        )
    if status == 409 and code == "OperationNotStartable":
        return (
            "Another lifecycle operation is running on the environment: wait for it to finish "
            "(re-read the environment) and retry. Do not re-post blindly."
        )
    if status == 409:
        return "Re-read the resource and reconcile with its current state before retrying."
    if status == 412:
        return "The resource changed or is in the wrong state: re-read it and retry."
    if status == 400:
        return "Fix the request parameters named in the message and retry."
    if status == 429:
        wait = f"{retry_after:g} seconds" if retry_after is not None else "a while"
        return f"The service is throttling this caller: retry after {wait} or lower the concurrency."
    if status is not None and status >= 500:
        return (
            "The service failed: retry later; if it persists, report the correlation id to Microsoft support."
        )
    return "Check the service's error code and message."


def error_for_status(
    status: int | None,
    code: str | None,
    message: str | None,
    *,
    action: str,
    target: str | None,
    correlation_id: str | None = None,
    retry_after: float | None = None,
) -> CmkError:
    """The typed CmkError for an HTTP status and service error code."""
    text = f"{action} failed"
    if target:
        text += f" for {target}"
    text += f": {message or 'HTTP ' + str(status)} {_hint(status, code, retry_after)}"
    kwargs: dict[str, Any] = {
        "code": code,
        "status": status,
        "correlation_id": correlation_id,
        "target": target,
    }
    if status == 401:
        return AuthenticationError(text, **kwargs)
    if status == 403:
        return ForbiddenError(text, **kwargs)
    if status == 404:
        return NotFoundError(text, **kwargs)
    if status == 409 and code == "OperationNotStartable":
        return BusyError(text, **kwargs)
    if status == 409:
        return ConflictError(text, **kwargs)
    if status == 412:
        return PreconditionFailedError(text, **kwargs)
    if status == 429:
        return ThrottledError(text, retry_after=retry_after, **kwargs)
    if status is not None and 400 <= status < 500:
        return InvalidRequestError(text, **kwargs)
    return ServiceError(text, **kwargs)


def from_azure_error(exc: Exception, *, action: str, target: str | None = None) -> CmkError:
    """Translate an azure-core exception (HttpResponseError, connection or credential errors)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    if isinstance(exc, CmkError):
        return exc
    response = getattr(exc, "response", None)
    if isinstance(exc, HttpResponseError) and response is not None:
        code = exc.error.code if getattr(exc, "error", None) is not None else None
        message = exc.error.message if getattr(exc, "error", None) is not None else None
        if code is None or message is None:
            try:
                body_code, body_message = parse_error_body(response.json())
            except Exception:  # the body is not JSON
                body_code, body_message = None, None
            code = code or body_code
            message = message or body_message or exc.reason
        request = getattr(response, "request", None)
        correlation = correlation_id_from(response.headers, getattr(request, "headers", None))
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return error_for_status(
            exc.status_code,
            code,
            message,
            action=action,
            target=target,
            correlation_id=correlation,
            retry_after=retry_after,
        )
    if isinstance(exc, ClientAuthenticationError):
        return AuthenticationError(
            f"{action} failed: the credential could not get a token ({type(exc).__name__}). Check the "
            "auth mode, "
            "tenant_id, client_id and (for managed identity) identity_endpoint of these settings.",
            target=target,
        )
    if isinstance(exc, ServiceRequestError):
        return ConnectionFailedError(
            f"{action} failed: the service could not be reached "
            f"({exc.message.splitlines()[0][:200]}). Check the "
            "endpoint URL and, for a private CA such as the simulator's, that ca_bundle points at "
            "its certificate.",
            target=target,
        )
    return ServiceError(f"{action} failed: {type(exc).__name__}: {exc}", target=target)


def from_httpx_response(response: Any, *, action: str, target: str | None = None) -> CmkError:
    """Translate a failed httpx.Response into a typed CmkError."""
    try:
        code, message = parse_error_body(response.json())
    except ValueError:
        code, message = None, (response.text[:300] or response.reason_phrase)
    return error_for_status(
        response.status_code,
        code,
        message,
        action=action,
        target=target,
        correlation_id=correlation_id_from(response.headers, response.request.headers),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )
