"""Per-caller token buckets that answer 429 with Retry-After when empty."""

from __future__ import annotations

import math
import threading


class RateLimiter:
    """A token bucket per (service, caller); refill per real second."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, service: str, caller: str, rate_per_second: float, burst: int, now: float) -> float | None:
        """Take one token; None if allowed, else the seconds to wait."""
        key = (service, caller)
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate_per_second)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return None
            self._buckets[key] = (tokens, now)
            return max(1.0, math.ceil((1 - tokens) / rate_per_second))

    def reset(self) -> None:
        """Refill every bucket."""
        with self._lock:
            self._buckets.clear()
