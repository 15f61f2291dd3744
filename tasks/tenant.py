"""Bulk reads across the services: the Azure side of the inventory, one key's state, the retirement facts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE

from cmk.domain.models import KeyInfo, PolicyInfo, RoleAssignmentInfo, VaultInfo
from cmk.errors import CmkError, NotFoundError
from cmk.inventory.drift import ExpectedGrant
from cmk.inventory.snapshot import KeyState
from cmk.plans.retirement import RetirementFacts
from cmk.state.key_retirements import Retirement
from cmk.state.policy_retirements import PolicyRetirement
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@dataclass
class AzureSideState:
    """What was read on the Azure side: vaults, keys and role assignments by lower-case id, and failures."""

    vaults: dict[str, VaultInfo] = field(default_factory=dict)
    keys: dict[tuple[str, str], KeyState] = field(default_factory=dict)
    role_assignments: dict[str, list[RoleAssignmentInfo]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, CmkError) else f"{type(exc).__name__}: {exc}"


@task(name="read-azure-side", cache_policy=NO_CACHE)
def read_azure_side(
    services: Services,
    policies: Sequence[PolicyInfo],
    grants: Sequence[ExpectedGrant],
    retirements: Sequence[Retirement] = (),
) -> AzureSideState:
    """Each vault, key and grant scope the policies, journal and retirements name, read once; failures kept."""
    state = AzureSideState()
    vault_ids = {p.vault_id.lower(): p.vault_id for p in policies if p.vault_id}
    vault_ids.update({g.scope.lower(): g.scope for g in grants if g.kind == "access_policy"})
    for vault_id in vault_ids.values():
        try:
            state.vaults[vault_id.lower()] = services.keyvault.get_vault(vault_id)
        except Exception as exc:  # reported per target, never dropped
            state.errors[vault_id] = _error(exc)
    for policy in policies:
        vault = state.vaults.get((policy.vault_id or "").lower())
        if vault is None or not policy.key_name:
            continue
        ident = (vault.uri.lower(), policy.key_name.lower())
        if ident not in state.keys:
            state.keys[ident] = read_key_state(services, vault.uri, policy.key_name)
    for retirement in retirements:
        ident = (retirement.vault_uri.lower(), retirement.key_name.lower())
        if ident not in state.keys:
            state.keys[ident] = read_key_state(services, retirement.vault_uri, retirement.key_name)
    scopes = {g.scope.lower(): g.scope for g in grants if g.kind == "role_assignment"}
    for scope in scopes.values():
        try:
            state.role_assignments[scope.lower()] = services.arm.list_role_assignments(scope)
        except Exception as exc:
            state.errors[scope] = _error(exc)
    return state


def read_key_state(services: Services, vault_uri: str, name: str) -> KeyState:
    """A key's versions and rotation policy, or the reason they could not be read."""
    try:
        versions = tuple(services.keyvault.list_key_versions(vault_uri, name))
        rotation = services.keyvault.get_rotation_policy(vault_uri, name)
    except Exception as exc:
        return KeyState(vault_uri, name, error=_error(exc))
    return KeyState(vault_uri, name, versions=versions, rotation=rotation)


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
