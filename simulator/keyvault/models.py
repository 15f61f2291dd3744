"""Key Vault state (STUB: the interface other services rely on; replaced by the real models)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.core.world import World


class KeyVaultState:
    """Keys of every vault, by vault name."""

    def __init__(self, world: World) -> None:
        self.world = world

    def load(self, scenario: dict[str, Any]) -> None:
        """Seed keys from scenario vaults[].keys."""

    def tick(self, now: float) -> None:
        """Nothing is timed in Key Vault yet."""

    def snapshot(self) -> dict[str, Any]:
        """State as JSON (no private key material)."""
        return {}

    def key_problem(self, vault_name: str, key_name: str, version: str | None, now: float) -> str | None:
        """Why the key (version, or latest when None) cannot be used now, or None when it can."""
        return "key store not implemented"
