"""The failure budget of a change: failures counted across waves, halting new starts past the threshold."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cmk.moves.waves import threshold_crossed


@dataclass
class FailureBudget:
    """Failures counted across waves; once the threshold is reached no new environment is started."""

    threshold: int
    failures: int = 0
    halted: bool = False
    reason: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def fail(self) -> None:
        """Count one failure and halt when the threshold is reached."""
        with self._lock:
            self.failures += 1
            if not self.halted and threshold_crossed(self.failures, self.threshold):
                self.halt(
                    f"{self.failures} failure(s) reached the threshold of {self.threshold}; "
                    "no new environment was started."
                )

    def halt(self, reason: str) -> None:
        """Stop starting new environments, saying why."""
        self.halted = True
        self.reason = self.reason or reason
