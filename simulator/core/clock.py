"""Simulated time: real time scaled by a factor, plus an offset that tests can advance."""

from __future__ import annotations

import threading
import time


class Clock:
    """A clock whose rate can be scaled and which can be advanced by hand."""

    def __init__(self, scale: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._scale = scale
        self._anchor_real = time.time()
        self._anchor_sim = self._anchor_real

    def now(self) -> float:
        """Simulated Unix time in seconds."""
        with self._lock:
            return self._anchor_sim + (time.time() - self._anchor_real) * self._scale

    @property
    def scale(self) -> float:
        """How many simulated seconds pass per real second."""
        return self._scale

    def set_scale(self, scale: float) -> None:
        """Change the rate from now on, keeping the current simulated time."""
        if scale <= 0:
            raise ValueError("scale must be positive")
        with self._lock:
            now_real = time.time()
            self._anchor_sim = self._anchor_sim + (now_real - self._anchor_real) * self._scale
            self._anchor_real = now_real
            self._scale = scale

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._anchor_sim += seconds

    def real_seconds(self, sim_seconds: float) -> float:
        """How long in real seconds a simulated duration takes at the current scale."""
        return sim_seconds / self._scale
