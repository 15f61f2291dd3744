"""Reads the rotation plans need beyond the policy and key: role assignments, and a policy that may not exist."""

from __future__ import annotations

from prefect import task

from cmk.models import PolicyInfo, RoleAssignmentInfo, VaultInfo
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(name="read-key-role-assignments", **TRANSIENT_RETRY)
def read_key_role_assignments(
    services: Services, vault: VaultInfo, principal_id: str | None
) -> list[RoleAssignmentInfo]:
    """The principal's role assignments on an RBAC vault; empty for an access-policy vault (nothing to read)."""
    if not vault.rbac or not principal_id:
        return []
    return services.arm.list_role_assignments(vault.id, principal_id)


@task(name="find-policy", **TRANSIENT_RETRY)
def find_policy(services: Services, policy_id: str) -> PolicyInfo | None:
    """The enterprise policy, or None when it does not exist (yet)."""
    return services.arm.find_policy(policy_id)
