"""Small stand-ins for the ARM and Key Vault states, for BAP model tests (collaborator scaffolding)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.scenarios.demo import SUBSCRIPTION_ID

RG = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-cmk"
READ = "Microsoft.PowerPlatform/enterprisePolicies/read"


@dataclass
class FakeVault:
    """A vault as BAP health sees it."""

    name: str
    enable_rbac_authorization: bool = False
    deleted: bool = False
    permissions: dict[str, set[str]] = field(default_factory=dict)
    network_problem: str | None = None  # what ARM's network rule would say

    @property
    def id(self) -> str:
        """ARM id."""
        return f"{RG}/providers/Microsoft.KeyVault/vaults/{self.name}"

    def key_permissions_for(self, object_id: str) -> set[str]:
        """Lower-case key permissions of an access policy."""
        return set(self.permissions.get(object_id, set()))


@dataclass
class FakePolicy:
    """An enterprise policy as BAP sees it."""

    name: str
    location: str
    principal_id: str
    vault: FakeVault
    key_name: str = "cmk"
    key_version: str | None = None
    kind: str = "Encryption"
    guid: str = "44444444-4444-4444-4444-444444444444"
    resource_group: str = "rg-cmk"
    tenant_id: str = "t"

    @property
    def id(self) -> str:
        """ARM id."""
        return f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/{self.name}"

    @property
    def system_id(self) -> str:
        """BAP systemId."""
        return f"/regions/{self.location}/providers/Microsoft.PowerPlatform/enterprisePolicies/{self.guid}"

    @property
    def vault_id(self) -> str:
        """The vault's ARM id."""
        return self.vault.id


class FakeArm:
    """find_* and has_* over lists the test controls."""

    def __init__(self) -> None:
        self.policies: list[FakePolicy] = []
        self.vaults: list[FakeVault] = []
        self.actions: set[tuple[str, str, str]] = set()  # (oid, scope lower, action)
        self.data_actions: set[tuple[str, str, str]] = set()

    def tick(self, now: float) -> None:
        """Nothing timed."""

    def snapshot(self) -> dict[str, Any]:
        """Nothing to show."""
        return {}

    def find_policy_by_system_id(self, system_id: str) -> FakePolicy | None:
        """By systemId, case-insensitive."""
        return next((p for p in self.policies if p.system_id.lower() == system_id.lower()), None)

    def find_policies_by_name(self, name: str) -> list[FakePolicy]:
        """Every policy with this name."""
        return [p for p in self.policies if p.name.lower() == name.lower()]

    def find_policy_by_id(self, resource_id: str) -> FakePolicy | None:
        """By ARM id, case-insensitive."""
        return next((p for p in self.policies if p.id.lower() == resource_id.lower()), None)

    def find_vault_by_id(self, resource_id: str) -> FakeVault | None:
        """Live vault by ARM id."""
        return next((v for v in self.vaults if v.id.lower() == resource_id.lower() and not v.deleted), None)

    def vault_network_problem(self, resource_id: str) -> str | None:
        """The live vault's network problem, as the test set it."""
        vault = self.find_vault_by_id(resource_id)
        return vault.network_problem if vault is not None else None

    def has_action(self, principal_oid: str, scope: str, action: str) -> bool:
        """Exact-scope grant."""
        return (principal_oid, scope.lower(), action) in self.actions

    def has_data_action(self, principal_oid: str, scope: str, data_action: str) -> bool:
        """Exact-scope grant."""
        return (principal_oid, scope.lower(), data_action) in self.data_actions


class FakeKv:
    """key_problem from a dict the test controls."""

    def __init__(self) -> None:
        self.problems: dict[tuple[str, str], str] = {}

    def tick(self, now: float) -> None:
        """Nothing timed."""

    def snapshot(self) -> dict[str, Any]:
        """Nothing to show."""
        return {}

    def key_problem(self, vault_name: str, key_name: str, version: str | None, now: float) -> str | None:
        """The configured problem, if any."""
        return self.problems.get((vault_name, key_name))
