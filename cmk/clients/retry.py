"""Retry decisions for BAP: exponential backoff with jitter, Retry-After honoured, no blind re-posts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait; pure, so tests can drive it with a fake clock and random source."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 300.0
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with 'equal jitter' for the attempt that just failed (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return ceiling / 2 + self.random() * ceiling / 2

    def delay(
        self,
        attempt: int,
        *,
        status: int | None,
        retry_after: float | None,
        idempotent: bool,
        sent: bool = True,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when the failure must not be retried.

        status None means a transport error; sent says whether the request may have reached the server.
        A non-idempotent request (starting an operation) is retried only when it certainly started nothing:
        429, 503 with Retry-After (the gateway refused it), or a connection that never sent it.
        """
        if attempt >= self.max_attempts:
            return None
        if status is None:
            if not idempotent and sent:
                return None
        elif status not in RETRYABLE_STATUSES:
            return None
        elif not idempotent and not (status == 429 or (status == 503 and retry_after is not None)):
            return None
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        return self.backoff(attempt)
