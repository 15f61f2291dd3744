"""Pure lock/unlock logic: deletion deadlines, grant round-trips, and methods that cannot lock a policy."""

from __future__ import annotations

import pytest

from cmk.domain.models import AccessPolicyInfo, PolicyInfo, VaultInfo
from cmk.plans.lockdown import Grant, deletion_days, plan_revocation

VAULT_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
POLICY = PolicyInfo(
    id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.PowerPlatform/enterprisePolicies/ep",
    name="ep",
    resource_group="rg",
    location="europe",
    kind="Encryption",
    system_id="/regions/europe/providers/Microsoft.PowerPlatform/enterprisePolicies/1",
    principal_id="p-1",
    tenant_id="t",
    vault_id=VAULT_ID,
    key_name="k",
    key_version=None,
)


def vault(rbac: bool, entries: tuple[AccessPolicyInfo, ...] = ()) -> VaultInfo:
    return VaultInfo(VAULT_ID, "kv", "https://kv", "rg", True, 90, True, rbac, entries)


def test_deletion_deadlines_follow_the_sku() -> None:
    assert deletion_days("Sandbox") == (7, True)
    assert deletion_days("Production") == (30, True)
    assert deletion_days("Developer") == (7, False)  # undocumented: the shorter deadline


def test_access_policy_grant_round_trips_with_the_service_spelling() -> None:
    entry = AccessPolicyInfo("p-1", frozenset({"get", "wrapkey", "unwrapkey"}))
    grants, reason = plan_revocation("access_policy", vault(False, (entry,)), POLICY, [], None)
    assert reason is None
    assert grants[0].key_permissions == ("get", "unwrapKey", "wrapKey")
    assert Grant.from_dict(grants[0].to_dict()) == grants[0]


@pytest.mark.parametrize(
    ("method", "rbac", "expected"),
    [
        ("access_policy", True, "uses Azure RBAC"),
        ("role_assignment", False, "uses access policies"),
        ("access_policy", False, "nothing to remove"),
        ("role_assignment", True, "nothing to remove"),
        ("disable_key", False, "was not found"),
    ],
)
def test_methods_that_cannot_lock_say_why(method: str, rbac: bool, expected: str) -> None:
    grants, reason = plan_revocation(method, vault(rbac), POLICY, [], None)  # type: ignore[arg-type]
    assert grants == [] and reason is not None and expected in reason


def test_a_hand_written_grant_missing_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="needs scope, role_definition_id"):
        Grant.from_dict({"method": "role_assignment", "vault_id": VAULT_ID, "principal_id": "p-1"})
