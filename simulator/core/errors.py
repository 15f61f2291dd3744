"""Wire errors in the ARM / Key Vault envelope: {"error": {"code", "message", ...}}."""

from __future__ import annotations

from typing import Any


class SimError(Exception):
    """An error a simulated service answers with; rendered as the real error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner_code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code}
        error.update(self.extra)
        return {"error": error}


def not_found(code: str, message: str) -> SimError:
    """A 404 with the given code."""
    return SimError(404, code, message)


def bad_request(code: str, message: str) -> SimError:
    """A 400 with the given code."""
    return SimError(400, code, message)


def conflict(code: str, message: str, inner_code: str | None = None) -> SimError:
    """A 409 with the given code."""
    return SimError(409, code, message, inner_code=inner_code)
