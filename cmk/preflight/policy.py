"""Enterprise policy checks: kind, identity, systemId and a key reference that matches the vault."""

from __future__ import annotations

from cmk.domain.models import PolicyInfo, VaultInfo
from cmk.domain.resource_ids import same_id
from cmk.preflight.findings import Finding


def check_policy(
    policy: PolicyInfo | None, vault: VaultInfo | None = None, policy_id: str = ""
) -> list[Finding]:
    """The policy exists, is kind Encryption with a system identity and systemId, and points at this vault."""
    if policy is None:
        return [
            Finding(
                "POLICY_NOT_FOUND",
                "blocking",
                policy_id,
                "The enterprise policy does not exist or the identity cannot read it.",
                "Create the policy (onboard flow) or fix the policy id; the Power Platform admin "
                "needs Reader on it.",
            )
        ]
    out: list[Finding] = []
    if policy.kind.lower() != "encryption":
        out.append(
            Finding(
                "POLICY_KIND_INVALID",
                "blocking",
                policy.id,
                f"The policy is kind {policy.kind or 'unknown'}, not Encryption.",
                "Use an enterprise policy of kind Encryption.",
            )
        )
    if not policy.principal_id or (policy.identity_type and policy.identity_type != "SystemAssigned"):
        out.append(
            Finding(
                "POLICY_IDENTITY_MISSING",
                "blocking",
                policy.id,
                "The policy has no system-assigned managed identity (identity.principalId) yet.",
                "Wait a few minutes after creating the policy and re-run; redeploy it with identity "
                "SystemAssigned.",
            )
        )
    if not policy.system_id:
        out.append(
            Finding(
                "POLICY_SYSTEM_ID_MISSING",
                "blocking",
                policy.id,
                "The policy has no systemId: it may not be fully provisioned.",
                "Wait for the deployment to finish and re-read the policy.",
            )
        )
    if not policy.key_name:
        out.append(
            Finding(
                "POLICY_KEY_MISSING",
                "blocking",
                policy.id,
                "The policy names no key.",
                "Redeploy the policy with the key name.",
            )
        )
    if vault is not None and not same_id(policy.vault_id, vault.id):
        out.append(
            Finding(
                "POLICY_VAULT_MISMATCH",
                "blocking",
                policy.id,
                f"The policy points at vault {policy.vault_id}, not {vault.id}.",
                "Use the policy that references this vault, or check the vault you meant.",
            )
        )
    # A warning: the cause (missing permission, disabled or expired key) is a blocking finding of its own,
    # and a freshly created policy is Unhealthy until its identity is granted access.
    if policy.health and policy.health.lower() == "unhealthy":
        out.append(
            Finding(
                "POLICY_UNHEALTHY",
                "warning",
                policy.id,
                "The policy is Unhealthy: its identity cannot use its key, so linked environments "
                "are locked.",
                "Restore the identity's access to the original key, then re-enable the environments.",
            )
        )
    return out
