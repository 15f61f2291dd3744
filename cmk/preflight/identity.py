"""Identity checks: the policy's identity can get, wrap and unwrap the key (access policy or RBAC role)."""

from __future__ import annotations

from collections.abc import Iterable

from cmk.domain.models import PolicyInfo, RoleAssignmentInfo, VaultInfo
from cmk.domain.resource_ids import scope_covers
from cmk.domain.roles import KEY_WRAP_ROLES
from cmk.preflight.findings import Finding

REQUIRED_KEY_PERMISSIONS = ("get", "wrapKey", "unwrapKey")


def check_identity_permissions(
    vault: VaultInfo, policy: PolicyInfo, role_assignments: Iterable[RoleAssignmentInfo] = ()
) -> list[Finding]:
    """Access policy get/wrapKey/unwrapKey, or (RBAC vault) a key role at vault scope or above."""
    principal = policy.principal_id
    if not principal:
        return []  # reported by check_policy as POLICY_IDENTITY_MISSING
    if vault.rbac:
        held = [
            a
            for a in role_assignments
            if a.principal_id.lower() == principal.lower()
            and a.role_guid in KEY_WRAP_ROLES
            and scope_covers(a.scope, vault.id)
        ]
        if held:
            return []
        return [
            Finding(
                "IDENTITY_RBAC_ROLE_MISSING",
                "blocking",
                vault.id,
                f"The policy identity {principal} holds no 'Key Vault Crypto Service Encryption User' "
                "role on "
                f"vault {vault.name} (an RBAC vault).",
                "Assign 'Key Vault Crypto Service Encryption User' at vault scope to the policy identity; "
                "role assignments can take up to 5 minutes to take effect.",
            )
        ]
    entry = vault.access_policy_for(principal)
    missing = [p for p in REQUIRED_KEY_PERMISSIONS if entry is None or not entry.allows(p)]
    if not missing:
        return []
    return [
        Finding(
            "IDENTITY_KEY_PERMISSIONS_MISSING",
            "blocking",
            vault.id,
            f"The policy identity {principal} lacks key permissions {', '.join(missing)} on vault "
            f"{vault.name}.",
            "Add an access policy for the policy identity with key permissions Get, WrapKey and UnwrapKey.",
        )
    ]
