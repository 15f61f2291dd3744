"""Retire tasks: read what the retirements depend on in bulk, then disable a version or delete a policy and access."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.errors import NotFoundError
from cmk.models import KeyInfo
from cmk.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from cmk.retirement_checks import RetirementFacts
from cmk.retirements import RETIREMENTS_FILE, Retirement, RetirementRegister
from tasks.context import Services, state_dir
from tasks.retry import TRANSIENT_RETRY


@task(name="read-retirement-registers", cache_policy=NO_CACHE)
def read_retirement_registers(
    rotation_change_id: str = "",
) -> tuple[list[Retirement], list[PolicyRetirement]]:
    """The key versions and the not yet retired policies recorded by rotations (of one rotation when given)."""
    keys = [
        r
        for r in RetirementRegister(state_dir() / RETIREMENTS_FILE).entries()
        if not rotation_change_id or r.change_id == rotation_change_id
    ]
    policies = [
        p
        for p in PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).entries()
        if not p.retired and (not rotation_change_id or p.change_id == rotation_change_id)
    ]
    return keys, policies


def _key(services: Services, vault_uri: str, name: str, version: str | None) -> KeyInfo | None:
    try:
        return services.keyvault.get_key(vault_uri, name, version)
    except NotFoundError:
        return None


@task(name="read-retirement-facts", **TRANSIENT_RETRY)
def read_retirement_facts(
    services: Services, keys: Sequence[Retirement], policies: Sequence[PolicyRetirement]
) -> RetirementFacts:
    """Everything the retirement decision needs, read once (reads only, no write)."""
    facts = RetirementFacts()
    if keys:
        facts.policies = services.arm.list_policies()
        for p in facts.policies:
            vault_id = (p.vault_id or "").lower()
            if vault_id and vault_id not in facts.vault_uris:
                try:
                    facts.vault_uris[vault_id] = services.keyvault.get_vault(vault_id).uri.lower().rstrip("/")
                except NotFoundError:
                    facts.vault_uris[vault_id] = ""
    for r in keys:
        uri, name, version = r.vault_uri.lower().rstrip("/"), r.key_name.lower(), r.version.lower()
        found = _key(services, r.vault_uri, r.key_name, r.version)
        facts.versions[(uri, name, version)] = found
        latest = _key(services, r.vault_uri, r.key_name, None) if found is not None else None
        facts.latest[(uri, name)] = latest.version if latest else None
    if policies:
        facts.environments = services.powerplatform.list_environments()
    for p in policies:
        vault_id = p.vault_id.lower()
        if vault_id not in facts.vaults:
            try:
                facts.vaults[vault_id] = services.keyvault.get_vault(p.vault_id)
            except NotFoundError:
                facts.vaults[vault_id] = None
        vault = facts.vaults[vault_id]
        if vault is not None and vault.rbac:
            for principal in (p.principal_id, p.new_principal_id):
                if principal:
                    facts.role_assignments[(vault_id, principal.lower())] = (
                        services.arm.list_role_assignments(p.vault_id, principal)
                    )
    return facts


@task(name="disable-key-version", cache_policy=NO_CACHE)
def disable_key_version(services: Services, vault_uri: str, key_name: str, version: str) -> KeyInfo:
    """Disable one old key version (it stays in the vault and can be enabled again)."""
    key = services.keyvault.set_key_version_enabled(vault_uri, key_name, version, False)
    get_run_logger().info("Disabled key %s version %s.", key_name, version)
    return key


@task(name="delete-enterprise-policy", cache_policy=NO_CACHE)
def delete_enterprise_policy(services: Services, policy_id: str) -> bool:
    """Delete the old enterprise policy; False when it was already gone."""
    deleted = services.arm.delete_enterprise_policy(policy_id)
    get_run_logger().info(
        "Policy %s %s.", policy_id.rsplit("/", 1)[-1], "deleted" if deleted else "was already gone"
    )
    return deleted


@task(name="remove-access-policy", cache_policy=NO_CACHE)
def remove_access_policy(services: Services, vault_id: str, principal_id: str) -> bool:
    """Remove a principal's access-policy entry from a vault; False when it had none."""
    return bool(services.keyvault.remove_access_policy(vault_id, principal_id))


@task(name="delete-role-assignment", cache_policy=NO_CACHE)
def delete_role_assignment(services: Services, assignment_id: str) -> bool:
    """Delete one role assignment; False when it was already gone."""
    return services.arm.delete_role_assignment(assignment_id)
