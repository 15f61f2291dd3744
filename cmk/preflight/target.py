"""An existing CMK policy that environments are moved onto: the facts read about it, and the rules they must pass."""

from __future__ import annotations

from dataclasses import dataclass, field

from cmk.domain.models import KeyInfo, PolicyInfo, RoleAssignmentInfo, VaultInfo
from cmk.preflight.findings import Finding, sort_findings
from cmk.preflight.identity import check_identity_permissions
from cmk.preflight.key import check_key
from cmk.preflight.policy import check_policy
from cmk.preflight.reader import check_reader_grant
from cmk.preflight.vault import check_vault


@dataclass(frozen=True)
class TargetPolicyFacts:
    """What was read about a target policy: the policy, its vault and key, the grants; None where missing."""

    policy_id: str
    policy: PolicyInfo | None
    vault: VaultInfo | None = None
    vault_error: str | None = None  # why the policy's vault could not be read
    key: KeyInfo | None = None
    key_assignments: tuple[RoleAssignmentInfo, ...] = ()
    admin_object_id: str | None = None
    reader_assignments: tuple[RoleAssignmentInfo, ...] = field(default=())


def policy_health_findings(policy: PolicyInfo) -> list[Finding]:
    """A policy environments are moved onto (or off) must be Healthy: its identity can use its key."""
    if (policy.health or "").lower() == "healthy":
        return []
    return [
        Finding(
            "POLICY_NOT_HEALTHY",
            "blocking",
            policy.id,
            f"Enterprise policy {policy.name} is {policy.health or 'of unknown health'}: its identity cannot use "
            "its key now, so moving environments to or from it would fail.",
            "Restore the policy identity's access to its key (unlock flow, or grant it), wait until the policy "
            "reports Healthy, then re-run.",
        )
    ]


def check_target_policy(facts: TargetPolicyFacts) -> list[Finding]:
    """Whether the policy can take environments now: exists, Healthy, vault and key fit, access and Reader granted."""
    policy = facts.policy
    if policy is None:
        return check_policy(None, None, facts.policy_id)
    findings = policy_health_findings(policy)
    if facts.vault_error:
        findings.append(
            Finding(
                "VAULT_UNREADABLE",
                "blocking",
                policy.vault_id or "",
                f"The policy's vault cannot be read: {facts.vault_error}",
                "Check that the vault exists and the Azure identity may read it.",
            )
        )
    vault = facts.vault
    findings += check_policy(policy, vault, facts.policy_id)
    findings += check_vault(vault, policy.vault_id or "")
    if vault is not None:
        findings += check_identity_permissions(vault, policy, list(facts.key_assignments))
        if policy.key_name:
            findings += check_key(facts.key, key_ref=f"{vault.uri}/keys/{policy.key_name}")
    if facts.admin_object_id:
        findings += check_reader_grant(list(facts.reader_assignments), facts.admin_object_id, policy.id)
    return sort_findings(findings)
