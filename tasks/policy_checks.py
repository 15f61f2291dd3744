"""Preflight of an existing CMK policy: it exists, is healthy, its identity can use its key, the admin can read it."""

from __future__ import annotations

from prefect import task

from cmk.errors import CmkError
from cmk.migration import policy_health_findings
from cmk.models import PolicyInfo, VaultInfo
from cmk.preflight import (
    Finding,
    check_identity_permissions,
    check_key,
    check_policy,
    check_reader_grant,
    check_vault,
    sort_findings,
)
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(
    name="preflight-target-policy",
    **TRANSIENT_RETRY,
)
def preflight_target_policy(
    services: Services, policy_id: str
) -> tuple[PolicyInfo | None, VaultInfo | None, list[Finding]]:
    """Read the policy, its vault and key, and check they can take environments now (all reads, no writes)."""
    policy = services.arm.find_policy(policy_id)
    if policy is None:
        return None, None, check_policy(None, None, policy_id)
    findings = policy_health_findings(policy)
    vault = None
    if policy.vault_id:
        try:
            vault = services.keyvault.get_vault(policy.vault_id)
        except CmkError as exc:
            findings.append(
                Finding(
                    "VAULT_UNREADABLE",
                    "blocking",
                    policy.vault_id,
                    f"The policy's vault cannot be read: {exc.message}",
                    "Check that the vault exists and the Azure identity may read it.",
                )
            )
    findings += check_policy(policy, vault, policy_id)
    findings += check_vault(vault, policy.vault_id or "")
    if vault is not None:
        assignments = services.arm.list_role_assignments(vault.id, policy.principal_id) if vault.rbac else []
        findings += check_identity_permissions(vault, policy, assignments)
        if policy.key_name:
            try:
                key = services.keyvault.get_key(vault.uri, policy.key_name, policy.key_version or None)
            except CmkError:
                key = None
            findings += check_key(key, key_ref=f"{vault.uri}/keys/{policy.key_name}")
    if services.admin_object_id:
        findings += check_reader_grant(
            services.arm.list_role_assignments(policy.id, services.admin_object_id),
            services.admin_object_id,
            policy.id,
        )
    return policy, vault, sort_findings(findings)
