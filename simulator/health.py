"""Key access health, derived across ARM and Key Vault (STUB: replaced by the real rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.core.world import World


def policy_key_problems(world: World, policy: Any) -> list[str]:
    """Why the policy's identity cannot get, wrap and unwrap its key now; empty when it can."""
    return []


def policy_health_status(world: World, policy: Any) -> str:
    """Healthy when the identity can use its key, else Unhealthy."""
    return "Healthy" if not policy_key_problems(world, policy) else "Unhealthy"
