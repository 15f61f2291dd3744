"""BAP state (STUB: the interface other services rely on; replaced by the real models)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.core.world import World


class BapState:
    """Environments and lifecycle operations."""

    def __init__(self, world: World) -> None:
        self.world = world

    def load(self, scenario: dict[str, Any]) -> None:
        """Seed environments from scenario environments."""

    def tick(self, now: float) -> None:
        """Progress operations; lock environments of unhealthy policies."""

    def snapshot(self) -> dict[str, Any]:
        """State as JSON."""
        return {}

    def environments_linked_to(self, system_id: str) -> list[str]:
        """Ids of environments linked (or linking/unlinking) to the policy with this systemId."""
        return []
