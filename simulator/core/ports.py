"""The questions one service asks another, as narrow interfaces; simulator/world.py answers them all.

A service model never imports another service or the World: it is given an object with these methods.
Vaults and policies travel as `Any` (ARM's Vault and EnterprisePolicy) so no service needs another's types.
"""

from __future__ import annotations

from typing import Any, Protocol


class RoleCheck(Protocol):
    """ARM's RBAC: whether a role assignment at a scope or above grants an action."""

    def has_action(self, principal_oid: str, scope: str, action: str) -> bool:
        """A control-plane action."""
        ...

    def has_data_action(self, principal_oid: str, scope: str, data_action: str) -> bool:
        """A data action."""
        ...


class KeyVaultPeers(RoleCheck, Protocol):
    """What the Key Vault data plane asks ARM: the vault behind an endpoint and the caller's roles on it."""

    tenant_id: str

    def find_vault(self, name: str) -> Any | None:
        """The live ARM vault with this name."""
        ...


class HealthPeers(RoleCheck, Protocol):
    """What the key access health rule asks ARM and Key Vault."""

    def now(self) -> float:
        """Simulated time."""
        ...

    def find_vault_by_id(self, resource_id: str) -> Any | None:
        """The live ARM vault with this id."""
        ...

    def key_problem(self, vault_name: str, key_name: str, version: str | None, now: float) -> str | None:
        """Why the key cannot be used now, or None."""
        ...

    def vault_network_problem(self, resource_id: str) -> str | None:
        """Why a trusted Microsoft service cannot reach the vault over the network (firewall, no bypass), or None."""
        ...


class ArmPeers(Protocol):
    """What ARM asks the others: linked environments, the policy's health, dropping a purged vault's keys."""

    def environments_linked_to(self, system_id: str) -> list[str]:
        """Ids of the environments linked to the policy with this systemId."""
        ...

    def policy_health_status(self, policy: Any) -> str:
        """Healthy or Unhealthy."""
        ...

    def drop_vault_keys(self, vault_name: str) -> None:
        """Forget every key of a purged vault."""
        ...


class BapPeers(RoleCheck, Protocol):
    """What BAP asks ARM and the health rule about enterprise policies."""

    def find_policy_by_system_id(self, system_id: str) -> Any | None:
        """The enterprise policy with this systemId."""
        ...

    def find_policies_by_name(self, name: str) -> list[Any]:
        """Every enterprise policy with this name."""
        ...

    def policy_key_problems(self, policy: Any) -> list[str]:
        """Why the policy's identity cannot use its key now; empty when it can."""
        ...
