"""The whole simulator state: the tenant and its three services, wired through the interfaces in core/ports.py."""

from __future__ import annotations

from typing import Any

from simulator import health
from simulator.arm.models import ArmState
from simulator.bap.models import BapState
from simulator.core.tenant import Tenant
from simulator.keyvault.models import KeyVaultState


class World(Tenant):
    """The tenant with ARM, Key Vault and BAP; it answers the questions one service asks another."""

    def load(self, scenario: dict[str, Any]) -> None:
        """Build all state from a scenario dict (see docs/simulator.md for its format)."""
        with self.lock:
            super().load(scenario)
            self.arm = ArmState(self, peers=self)
            self.kv = KeyVaultState(self, peers=self)
            self.bap = BapState(self, peers=self)
            self.arm.load(scenario)
            self.kv.load(scenario)
            self.bap.load(scenario)

    def tick(self) -> None:
        """Settle every timed transition that is due (operations, registrations, lock detection)."""
        with self.lock:
            now = self.clock.now()
            self.arm.tick(now)
            self.kv.tick(now)
            self.bap.tick(now)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON (for /_sim/state)."""
        with self.lock:
            self.tick()
            return {
                **super().snapshot(),
                "arm": self.arm.snapshot(),
                "keyvault": self.kv.snapshot(),
                "bap": self.bap.snapshot(),
            }

    # -- answers to core/ports.py: ARM ----------------------------------------------------
    def find_vault(self, name: str) -> Any | None:
        """The live ARM vault with this name."""
        return self.arm.find_vault(name)

    def find_vault_by_id(self, resource_id: str) -> Any | None:
        """The live ARM vault with this id."""
        return self.arm.find_vault_by_id(resource_id)

    def find_policy_by_system_id(self, system_id: str) -> Any | None:
        """The enterprise policy with this systemId."""
        return self.arm.find_policy_by_system_id(system_id)

    def find_policies_by_name(self, name: str) -> list[Any]:
        """Every enterprise policy with this name."""
        return list(self.arm.find_policies_by_name(name))

    def vault_network_problem(self, resource_id: str) -> str | None:
        """Why a trusted Microsoft service cannot reach the vault over the network, or None."""
        return self.arm.vault_network_problem(resource_id)

    def has_action(self, principal_oid: str, scope: str, action: str) -> bool:
        """ARM RBAC: a control-plane action."""
        return self.arm.has_action(principal_oid, scope, action)

    def has_data_action(self, principal_oid: str, scope: str, data_action: str) -> bool:
        """ARM RBAC: a data action."""
        return self.arm.has_data_action(principal_oid, scope, data_action)

    # -- Key Vault ------------------------------------------------------------------------
    def key_problem(self, vault_name: str, key_name: str, version: str | None, now: float) -> str | None:
        """Why the key cannot be used now, or None."""
        return self.kv.key_problem(vault_name, key_name, version, now)

    def drop_vault_keys(self, vault_name: str) -> None:
        """Forget every key of a purged vault."""
        self.kv.drop_vault(vault_name)

    # -- BAP ------------------------------------------------------------------------------
    def environments_linked_to(self, system_id: str) -> list[str]:
        """Ids of the environments linked to the policy with this systemId."""
        return list(self.bap.environments_linked_to(system_id) or [])

    # -- key access health ----------------------------------------------------------------
    def policy_key_problems(self, policy: Any) -> list[str]:
        """Why the policy's identity cannot use its key now; empty when it can."""
        return health.policy_key_problems(self, policy)

    def policy_health_status(self, policy: Any) -> str:
        """Healthy or Unhealthy."""
        return health.policy_health_status(self, policy)
