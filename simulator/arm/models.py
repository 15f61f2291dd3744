"""ARM state (STUB: the interface other services rely on; replaced by the real models)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.core.world import World


class ArmState:
    """Resource groups, providers, features, vaults, role assignments, deployments, enterprise policies."""

    def __init__(self, world: World) -> None:
        self.world = world

    def load(self, scenario: dict[str, Any]) -> None:
        """Seed from scenario sections resource_groups, providers, features, role_assignments, vaults,
        enterprise_policies."""

    def tick(self, now: float) -> None:
        """Settle due registrations and LROs."""

    def snapshot(self) -> dict[str, Any]:
        """State as JSON."""
        return {}

    # --- interface used by keyvault and bap -------------------------------------------
    def find_vault(self, name: str) -> Any | None:
        """The live (not soft-deleted) vault with this name, case-insensitive."""
        return None

    def find_vault_by_id(self, resource_id: str) -> Any | None:
        """The live vault with this ARM id, case-insensitive."""
        return None

    def find_policy_by_system_id(self, system_id: str) -> Any | None:
        """The enterprise policy with this systemId, case-insensitive."""
        return None

    def find_policy_by_id(self, resource_id: str) -> Any | None:
        """The enterprise policy with this ARM id, case-insensitive."""
        return None

    def has_action(self, principal_oid: str, scope: str, action: str) -> bool:
        """Whether a role assignment at scope or above grants the control-plane action."""
        return False

    def has_data_action(self, principal_oid: str, scope: str, data_action: str) -> bool:
        """Whether a role assignment at scope or above grants the data action."""
        return False
