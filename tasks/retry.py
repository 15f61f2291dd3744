"""Which task failures are worth a retry: transient service errors only, never a refused precondition."""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE

from cmk.errors import BusyError, ThrottledError


def is_transient(exc: BaseException) -> bool:
    """Throttling, busy environments, timeouts and 5xx answers are transient; everything else is final."""
    if isinstance(exc, ThrottledError | BusyError | TimeoutError | ConnectionError):
        return True
    status = getattr(exc, "status", None)
    return isinstance(status, int) and status >= 500


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """A Prefect retry_condition_fn that retries only transient failures."""
    try:
        state.result()
    except Exception as exc:  # the state's own exception
        return is_transient(exc)
    return False


# The decorator options of reads and of idempotent writes (ensure/grant: read, then write only if needed):
# transient failures retried with backoff, never cached. Other writes are not retried: a re-run with the same
# change id resumes them.
TRANSIENT_RETRY: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 5, 10],
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
}
