"""Retry decisions for BAP (exponential backoff with jitter, Retry-After honoured, no blind re-posts) and pacing."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
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


class TokenBucket:
    """Client-side pacing of one caller at one service: a token bucket, slowed down by 429 + Retry-After.

    `rate` None means no known limit: requests go at once until the service answers 429. A 429 makes every
    request of the caller wait out Retry-After and sets the rate just below what the service let through;
    after `calm` seconds without a 429 the rate creeps up again (2 % a second) towards the configured one,
    and without a configured one back to no limit once it doubled. `reserve()` only says how long to wait, so
    each caller sleeps with its own sleep function.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int = 20,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: float = 5.0,
        calm: float = 10.0,
    ) -> None:
        self.ceiling = rate if rate else None
        self.rate = self.ceiling
        self.burst = max(1, burst)
        self.clock = clock
        self.window = window
        self.calm = calm
        self.throttles = 0
        self._tat = 0.0  # the theoretical arrival time of the next request (GCRA)
        self._blocked_until = 0.0
        self._calm_since = 0.0
        self._throttled_at: float | None = None  # the rate set by the last 429
        self._grown = 0.0
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def limited(self) -> bool:
        """Whether requests are paced now (a configured limit, or one learnt from a 429)."""
        return self.rate is not None

    def reserve(self, *, after_429: bool = False) -> float:
        """Take the next slot: the seconds to wait before sending (0 when it may go now).

        after_429: the retry of a request that got the 429 and slept its Retry-After already.
        """
        with self._lock:
            now = self.clock()
            self._grow(now)
            wait = 0.0 if after_429 else max(0.0, self._blocked_until - now)
            if self.rate is None:
                return wait
            interval = 1.0 / self.rate
            tau = (self.burst - 1) * interval
            tat = max(self._tat, now) if not after_429 else now
            wait = max(wait, tat - tau - now)
            self._tat = max(tat, now + wait) + interval
            return wait

    def record(self) -> None:
        """A request the service accepted (not 429): counts towards the rate it lets through."""
        with self._lock:
            now = self.clock()
            self._sent.append(now)
            while self._sent and self._sent[0] < now - self.window:
                self._sent.popleft()

    def throttled(self, retry_after: float | None) -> None:
        """The service answered 429: everybody waits Retry-After; the rate drops below what got through."""
        with self._lock:
            now = self.clock()
            self.throttles += 1
            pause = retry_after if retry_after is not None else 1.0
            self._blocked_until = max(self._blocked_until, now + pause)
            self._calm_since = self._blocked_until
            while self._sent and self._sent[0] < now - self.window:
                self._sent.popleft()
            if len(self._sent) >= 10 and self._sent[-1] > self._sent[0]:
                observed = (len(self._sent) - 1) / (self._sent[-1] - self._sent[0])
                lowered = 0.9 * observed
                self.rate = lowered if self.rate is None else min(self.rate, lowered)
                self._throttled_at = self.rate
            if self.rate is not None:
                self._tat = self._blocked_until + (self.burst - 1) / self.rate  # no burst right after

    def _grow(self, now: float) -> None:
        """Additive recovery after `calm` seconds without a 429."""
        if self.rate is None or self._throttled_at is None or now < self._calm_since + self.calm:
            return
        elapsed = now - max(self._grown, self._calm_since + self.calm)
        if elapsed < 1.0:
            return
        self._grown = now
        self.rate *= 1.02**elapsed
        if self.ceiling is not None and self.rate >= self.ceiling:
            self.rate, self._throttled_at = self.ceiling, None
        elif self.ceiling is None and self.rate >= 2 * self._throttled_at:
            self.rate, self._throttled_at = None, None


_BUCKETS: dict[tuple[str, str, str], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def pacing_for(service: str, endpoint: str, caller: str, rate: float, burst: int) -> TokenBucket:
    """The process-wide bucket of one caller at one service endpoint (every client of that caller shares it)."""
    key = (service, endpoint.rstrip("/").lower(), caller)
    with _BUCKETS_LOCK:
        bucket = _BUCKETS.get(key)
        if bucket is None or bucket.ceiling != (rate or None) or bucket.burst != max(1, burst):
            bucket = _BUCKETS[key] = TokenBucket(rate or None, burst)
        return bucket
