"""Preflight tasks: re-read the vault and grants and run the cmk/ checks on them."""

from __future__ import annotations

from prefect import task

from cmk.models import KeyInfo, PolicyInfo
from cmk.preflight import (
    Finding,
    check_identity_permissions,
    check_key,
    check_reader_grant,
)
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(name="verify-policy-key-access", **TRANSIENT_RETRY)
def verify_policy_key_access(
    services: Services, vault_id: str, policy: PolicyInfo, key: KeyInfo, admin_object_id: str | None = None
) -> list[Finding]:
    """Re-read the vault and grants: the policy identity must be able to get, wrap and unwrap the key.

    The Reader grant is checked for admin_object_id (default: the connection block's admin).
    """
    admin = admin_object_id or services.admin_object_id
    vault = services.keyvault.get_vault(vault_id)
    assignments = services.arm.list_role_assignments(vault.id, policy.principal_id) if vault.rbac else []
    findings = check_identity_permissions(vault, policy, assignments)
    findings += check_key(services.keyvault.get_key(vault.uri, key.name))
    if admin:
        findings += check_reader_grant(services.arm.list_role_assignments(policy.id, admin), admin, policy.id)
    return findings
