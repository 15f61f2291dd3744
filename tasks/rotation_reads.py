"""Reads the rotation plans need beyond the policy and key: role assignments, and a policy that may not exist."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from cmk.models import PolicyInfo, RoleAssignmentInfo, VaultInfo
from tasks.context import Services
from tasks.retry import retry_transient

_RETRY = {
    "retries": 3,
    "retry_delay_seconds": [2, 5, 10],
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
}


@task(name="read-key-role-assignments", **_RETRY)
def read_key_role_assignments(
    services: Services, vault: VaultInfo, principal_id: str | None
) -> list[RoleAssignmentInfo]:
    """The principal's role assignments on an RBAC vault; empty for an access-policy vault (nothing to read)."""
    if not vault.rbac or not principal_id:
        return []
    return services.arm.list_role_assignments(vault.id, principal_id)


@task(name="find-policy", **_RETRY)
def find_policy(services: Services, policy_id: str) -> PolicyInfo | None:
    """The enterprise policy, or None when it does not exist (yet)."""
    return services.arm.find_policy(policy_id)
