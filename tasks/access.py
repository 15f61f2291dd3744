"""Access tasks: the grants on the key (access policy or RBAC role) and the admin's Reader on a policy."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.domain.models import PolicyInfo, RoleAssignmentInfo, VaultInfo
from cmk.errors import NotFoundError
from cmk.plans.lockdown import Grant, grant_present
from cmk.plans.regrant import RecordedGrant, grant_in_place
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


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


CRYPTO_SERVICE_ENCRYPTION_USER = "Key Vault Crypto Service Encryption User"


READER = "Reader"


@task(name="read-reader-grants", **TRANSIENT_RETRY)
def read_reader_grants(
    services: Services, policy: PolicyInfo | None, admin_object_id: str
) -> list[RoleAssignmentInfo]:
    """The admin's role assignments that apply to the policy."""
    if policy is None or not admin_object_id:
        return []
    return services.arm.list_role_assignments(policy.id, admin_object_id)


@task(name="grant-key-access", **TRANSIENT_RETRY)
def grant_key_access(services: Services, vault: VaultInfo, policy: PolicyInfo) -> str:
    """Give the policy identity get/wrapKey/unwrapKey: an access-policy entry or the RBAC role, by vault mode."""
    if vault.rbac:
        _, created = services.arm.ensure_role_assignment(
            vault.id, policy.principal_id, CRYPTO_SERVICE_ENCRYPTION_USER
        )
        how = "role Key Vault Crypto Service Encryption User"
    else:
        created = services.keyvault.ensure_access_policy(vault.id, policy.principal_id)
        how = "access policy get/wrapKey/unwrapKey"
    get_run_logger().info(
        "Key access for the policy identity: %s (%s).", how, "granted" if created else "present"
    )
    return how


@task(name="grant-policy-reader", **TRANSIENT_RETRY)
def grant_policy_reader(services: Services, policy: PolicyInfo, admin_object_id: str) -> bool:
    """Give the Power Platform administrator Reader on the policy (needed to link environments)."""
    _, created = services.arm.ensure_role_assignment(policy.id, admin_object_id, READER)
    return created


@task(name="remove-access-policy", cache_policy=NO_CACHE)
def remove_access_policy(services: Services, vault_id: str, principal_id: str) -> bool:
    """Remove a principal's access-policy entry from a vault; False when it had none."""
    return bool(services.keyvault.remove_access_policy(vault_id, principal_id))


@task(name="delete-role-assignment", cache_policy=NO_CACHE)
def delete_role_assignment(services: Services, assignment_id: str) -> bool:
    """Delete one role assignment; False when it was already gone."""
    return services.arm.delete_role_assignment(assignment_id)


@task(name="read-recorded-grants", **TRANSIENT_RETRY)
def read_recorded_grants(
    services: Services, grants: list[RecordedGrant]
) -> tuple[list[bool], dict[str, VaultInfo | None]]:
    """For each recorded grant whether it exists now, and the vaults read on the way (None = not found)."""
    vaults: dict[str, VaultInfo | None] = {}
    present = []
    for grant in grants:
        vault = None
        if grant.kind == "access_policy":
            if grant.scope.lower() not in vaults:
                try:
                    vaults[grant.scope.lower()] = services.keyvault.get_vault(grant.scope)
                except NotFoundError:
                    vaults[grant.scope.lower()] = None
            vault = vaults[grant.scope.lower()]
            assignments: list[RoleAssignmentInfo] = []
        else:
            assignments = services.arm.list_role_assignments(grant.scope, grant.principal_id)
        present.append(grant_in_place(grant, vault, assignments))
    return present, vaults


@task(name="regrant", cache_policy=NO_CACHE)
def regrant(services: Services, grant: RecordedGrant) -> bool:
    """Put one recorded grant back as it was recorded; False when it was already there (no write)."""
    if grant.kind == "access_policy":
        changed = services.keyvault.ensure_access_policy(
            grant.scope, grant.principal_id, list(grant.permissions)
        )
    else:
        _, changed = services.arm.ensure_role_assignment(grant.scope, grant.principal_id, grant.role)
    get_run_logger().info("Granted again: %s%s.", grant.describe(), "" if changed else " (it was there)")
    return changed
