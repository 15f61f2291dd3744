"""Lock and unlock tasks: read what grants key access, remove or restore one grant, wait for health and runtime."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.errors import NotFoundError, OperationTimeoutError
from cmk.lockdown import Grant, grant_present, shares_key
from cmk.models import EnvironmentInfo, KeyInfo, PolicyInfo, RoleAssignmentInfo, VaultInfo
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(name="read-policy", **TRANSIENT_RETRY)
def read_policy(services: Services, policy_id: str) -> PolicyInfo | None:
    """The enterprise policy with its health, or None when it does not exist."""
    return services.arm.find_policy(policy_id)


@task(name="read-policies-sharing-key", **TRANSIENT_RETRY)
def read_policies_sharing_key(services: Services, policy: PolicyInfo) -> list[PolicyInfo]:
    """The policy and every other Encryption policy of the subscription that uses the same key."""
    others = [
        p for p in services.arm.list_policies() if p.id.lower() != policy.id.lower() and shares_key(policy, p)
    ]
    return [policy, *others]


@task(name="read-policy-key", **TRANSIENT_RETRY)
def read_policy_key(services: Services, vault: VaultInfo, policy: PolicyInfo) -> KeyInfo | None:
    """The key version the policy uses (its pinned version, else the latest), or None when it is missing."""
    if not policy.key_name:
        return None
    try:
        return services.keyvault.get_key(vault.uri, policy.key_name, policy.key_version or None)
    except NotFoundError:
        return None


@task(name="read-key-role-assignments", **TRANSIENT_RETRY)
def read_key_role_assignments(
    services: Services, vault: VaultInfo, principal_id: str | None
) -> list[RoleAssignmentInfo]:
    """A principal's role assignments that apply to an RBAC vault; empty for an access-policy vault or no identity."""
    if not vault.rbac or not principal_id:
        return []
    return services.arm.list_role_assignments(vault.id, principal_id)


@task(name="read-grants-in-place", **TRANSIENT_RETRY)
def read_grants_in_place(services: Services, grants: list[Grant]) -> list[bool]:
    """For each grant, whether the access it describes exists now (reads only)."""
    vaults: dict[str, VaultInfo | None] = {}
    present = []
    for grant in grants:
        vault_id = grant.vault_id.lower()
        if vault_id not in vaults:
            try:
                vaults[vault_id] = services.keyvault.get_vault(grant.vault_id)
            except NotFoundError:
                vaults[vault_id] = None
        assignments = (
            services.arm.list_role_assignments(grant.scope, grant.principal_id)
            if grant.method == "role_assignment"
            else []
        )
        key = None
        if grant.method == "disable_key":
            try:
                key = services.keyvault.get_key(grant.vault_uri, grant.key_name, grant.key_version)
            except NotFoundError:
                key = None
        present.append(grant_present(grant, vaults[vault_id], assignments, key))
    return present


# Writes are not retried: a transient failure ends the task and a re-run with the same change id resumes.
@task(name="revoke-grant", cache_policy=NO_CACHE)
def revoke_grant(services: Services, grant: Grant) -> bool:
    """Remove one piece of the policy identity's key access; False when it was already gone (no write)."""
    logger = get_run_logger()
    if grant.method == "access_policy":
        removed = services.keyvault.remove_access_policy(grant.vault_id, grant.principal_id)
        changed = bool(removed)
    elif grant.method == "role_assignment":
        changed = services.arm.delete_role_assignment(grant.assignment_id)
    else:
        current = services.keyvault.get_key(grant.vault_uri, grant.key_name, grant.key_version)
        changed = current.enabled
        services.keyvault.set_key_version_enabled(grant.vault_uri, grant.key_name, grant.key_version, False)
    logger.warning("Revoked %s%s.", grant.describe(), "" if changed else " (it was already gone)")
    return changed


@task(name="restore-grant", cache_policy=NO_CACHE)
def restore_grant(services: Services, grant: Grant) -> bool:
    """Put back one piece of key access exactly as lock removed it; False when it was already there (no write)."""
    logger = get_run_logger()
    if grant.method == "access_policy":
        changed = services.keyvault.ensure_access_policy(
            grant.vault_id, grant.principal_id, list(grant.key_permissions)
        )
    elif grant.method == "role_assignment":
        _, changed = services.arm.ensure_role_assignment(
            grant.scope, grant.principal_id, grant.role_definition_id, grant.principal_type
        )
    else:
        current = services.keyvault.get_key(grant.vault_uri, grant.key_name, grant.key_version)
        changed = not current.enabled
        services.keyvault.set_key_version_enabled(grant.vault_uri, grant.key_name, grant.key_version, True)
    logger.info("Restored %s%s.", grant.describe(), "" if changed else " (it was already there)")
    return changed


@task(name="wait-policy-health", cache_policy=NO_CACHE)
def wait_policy_health(
    services: Services, policy_id: str, want: str, timeout_seconds: float, poll_seconds: float = 1.0
) -> PolicyInfo:
    """Re-read the policy until its healthStatus is `want`; OperationTimeoutError past the deadline."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        policy = services.arm.get_policy(policy_id)
        if (policy.health or "").lower() == want.lower():
            return policy
        if time.monotonic() > deadline:
            raise OperationTimeoutError(
                f"Enterprise policy {policy.name} is still {policy.health} after {timeout_seconds:g} s, not {want}. "
                "Re-read it later; run the flow again with the same change id to continue.",
                target=policy_id,
            )
        time.sleep(poll_seconds)


@task(name="wait-environments-runtime", cache_policy=NO_CACHE)
def wait_environments_runtime(
    services: Services, env_ids: list[str], want: str, timeout_seconds: float, poll_seconds: float = 1.0
) -> dict[str, EnvironmentInfo]:
    """Re-read the environment list until every env_id has runtime `want`, or the deadline passes.

    Returns the last state read of each environment; the caller decides what a laggard means.
    """
    wanted = {e.lower() for e in env_ids}
    deadline = time.monotonic() + timeout_seconds
    while True:
        seen = {e.id.lower(): e for e in services.powerplatform.list_environments() if e.id.lower() in wanted}
        lagging = [
            e
            for e in wanted
            if (seen.get(e) is None or (seen[e].runtime_state or "").lower() != want.lower())
        ]
        if not lagging or time.monotonic() > deadline:
            return seen
        time.sleep(poll_seconds)
