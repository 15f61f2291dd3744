"""Waves and halting: canary first, then the rest, stop starting new work past the failure threshold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WavePlan:
    """The canary environments and the remaining ones, in order."""

    canary: tuple[str, ...]
    rest: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """Every environment in plan order."""
        return self.canary + self.rest


def plan_waves(environment_ids: list[str], canary_size: int) -> WavePlan:
    """Split environments (deduplicated, order kept) into a canary wave and the rest."""
    if canary_size < 0:
        raise ValueError("canary_size must be 0 or more.")
    seen: set[str] = set()
    ordered = []
    for env_id in environment_ids:
        key = env_id.lower()
        if key not in seen:
            seen.add(key)
            ordered.append(env_id)
    return WavePlan(tuple(ordered[:canary_size]), tuple(ordered[canary_size:]))


def threshold_crossed(failures: int, failure_threshold: int) -> bool:
    """Whether failures reached the threshold at which no new environment is started."""
    return failure_threshold > 0 and failures >= failure_threshold
