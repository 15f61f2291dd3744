"""Model builders for unit tests: valid by default, override what a test is about."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cmk.domain.models import (
    AccessPolicyInfo,
    CmkLink,
    EnvironmentInfo,
    KeyInfo,
    PolicyInfo,
    RoleAssignmentInfo,
    VaultInfo,
)

SUB = "a3c1e5f7-2b4d-4e6f-8a0c-9d1e3f5a7b20"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
POLICY_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-eu"
)
PRINCIPAL = "11111111-2222-4333-8444-555555555555"
ADMIN = "0a1b2c3d-2222-4aaa-8bbb-000000000002"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def vault(**kw: Any) -> VaultInfo:
    """A compliant access-policy vault granting the policy identity get/wrap/unwrap."""
    base = VaultInfo(
        id=VAULT_ID,
        name="kv-cmk-demo",
        uri="https://127.0.0.1:1",
        resource_group="rg-cmk",
        soft_delete=True,
        retention_days=90,
        purge_protection=True,
        rbac=False,
        access_policies=(AccessPolicyInfo(PRINCIPAL, frozenset({"get", "wrapkey", "unwrapkey"})),),
    )
    return replace(base, **kw)


def key(**kw: Any) -> KeyInfo:
    """An enabled RSA 2048 key without dates."""
    base = KeyInfo("https://127.0.0.1:1", "cmk", "v1", "https://127.0.0.1:1/keys/cmk/v1", "RSA", 2048, True)
    return replace(base, **kw)


def policy(**kw: Any) -> PolicyInfo:
    """A provisioned Encryption policy in europe pointing at the vault."""
    base = PolicyInfo(
        id=POLICY_ID,
        name="ep-eu",
        resource_group="rg-cmk",
        location="europe",
        kind="Encryption",
        system_id="/regions/europe/providers/Microsoft.PowerPlatform/enterprisePolicies/abc",
        principal_id=PRINCIPAL,
        tenant_id="t",
        vault_id=VAULT_ID.upper(),
        key_name="cmk",
        key_version=None,
        health="Healthy",
        identity_type="SystemAssigned",
    )
    return replace(base, **kw)


def env(**kw: Any) -> EnvironmentInfo:
    """A managed production environment in europe on the Microsoft key."""
    base = EnvironmentInfo(
        id="00000000-0000-0000-0000-0000000e0001",
        display_name="Finance",
        location="europe",
        azure_region="westeurope",
        sku="Production",
        managed=True,
        runtime_state="Enabled",
        management_state="Ready",
        key_managed_by="Microsoft",
    )
    return replace(base, **kw)


def link(status: str = "Linked", system_id: str | None = None) -> CmkLink:
    """A CMK link to the factory policy."""
    return CmkLink(POLICY_ID, system_id or policy().system_id, status, "europe")


def assignment(principal: str, role_guid: str, scope: str) -> RoleAssignmentInfo:
    """A role assignment."""
    name = "ra1"
    return RoleAssignmentInfo(
        id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        name=name,
        scope=scope,
        role_definition_id=f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
        principal_id=principal,
    )
