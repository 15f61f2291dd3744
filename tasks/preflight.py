"""Preflight tasks: gather state in bulk, run the cmk/ checks, pick the environments to change."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from cmk.errors import NotFoundError
from cmk.models import EnvironmentInfo, KeyInfo, PolicyInfo, VaultInfo
from cmk.preflight import (
    Finding,
    check_environment,
    check_identity_permissions,
    check_key,
    check_reader_grant,
    check_vault,
    find_requested,
    normalise_geo,
    same_geo,
    sort_findings,
)
from tasks.context import Services
from tasks.retry import retry_transient

POWER_PLATFORM_GEOS = frozenset(
    "unitedstates southafrica uk japan india france europe germany switzerland canada brazil australia asia uae "
    "korea norway singapore sweden unitedstateseuap unitedkingdom".split()
)
_OPTS = {
    "cache_policy": NO_CACHE,
    "retries": 3,
    "retry_delay_seconds": [2, 5, 10],
    "retry_condition_fn": retry_transient,
}


def planned_policy(location: str) -> PolicyInfo:
    """A stand-in for the policy onboarding will create, so environment checks can compare geos."""
    return PolicyInfo(
        id="",
        name="",
        resource_group="",
        location=location,
        kind="Encryption",
        system_id=None,
        principal_id=None,
        tenant_id=None,
        vault_id=None,
        key_name=None,
        key_version=None,
    )


def choose_environments(
    envs: list[EnvironmentInfo], requested: list[str], location: str
) -> tuple[list[EnvironmentInfo], list[Finding]]:
    """The requested environments (unknown ids become findings), or every eligible one in the geo."""
    if requested:
        return find_requested(envs, requested)
    policy = planned_policy(location)
    eligible = [
        e
        for e in envs
        if same_geo(e.location, location)
        and not [f for f in check_environment(e, policy) if f.severity == "blocking"]
        and not (e.cmk and (e.cmk.status or "").lower() == "linked")
        and not e.byok
    ]
    return eligible, []


@task(name="preflight-onboarding", **_OPTS)
def preflight_onboarding(
    services: Services,
    vault: VaultInfo,
    envs: list[EnvironmentInfo],
    *,
    location: str,
    key_name: str,
    key_type: str,
    key_size: int,
    requested: list[str],
    admin_object_id: str | None,
    resuming: set[str] | None = None,
) -> tuple[list[Finding], list[EnvironmentInfo]]:
    """Vault, existing key, geo and environment checks before onboarding changes anything.

    Environments in `resuming` were started by an earlier run of the same change: only their existence is
    checked, since an operation in flight or a finished link is expected there.
    """
    findings: list[Finding] = list(check_vault(vault, vault.id))
    if normalise_geo(location) not in POWER_PLATFORM_GEOS:
        findings.append(
            Finding(
                "POLICY_LOCATION_INVALID",
                "blocking",
                location,
                f"'{location}' is not a Power Platform geo.",
                "Use the environments' geo, e.g. europe, unitedstates, uk, asia (see docs/operations.md).",
            )
        )
    try:
        existing = services.keyvault.get_key(vault.uri, key_name)
    except NotFoundError:
        existing = None
        findings.append(
            Finding(
                "KEY_WILL_BE_CREATED",
                "info",
                f"{vault.uri}/keys/{key_name}",
                f"Key {key_name} does not exist yet; a {key_type} {key_size} key will be created.",
                "Nothing to do.",
            )
        )
    if existing is not None:
        findings += check_key(existing)
        if existing.kty != key_type or existing.size != key_size:
            findings.append(
                Finding(
                    "KEY_PARAMETERS_DIFFER",
                    "blocking",
                    existing.kid,
                    f"Key {key_name} exists as {existing.kty} {existing.size}, not {key_type} {key_size}.",
                    "Adopt it by passing its real type and size, or choose another key name.",
                )
            )
    if not admin_object_id:
        findings.append(
            Finding(
                "READER_ADMIN_UNKNOWN",
                "warning",
                "powerplatform_admin_object_id",
                "No Power Platform admin object id is known, so Reader on the policy will not be granted.",
                "Set admin_object_id on the Power Platform connection block or pass powerplatform_admin_object_id.",
            )
        )
    targets, missing = choose_environments(envs, requested, location)
    findings += missing
    policy = planned_policy(location)
    resuming = {e.lower() for e in (resuming or set())}
    for env in targets:
        if env.id.lower() not in resuming:
            findings += check_environment(env, policy)
    if not targets:
        findings.append(
            Finding(
                "NO_ENVIRONMENTS",
                "blocking",
                location,
                f"No eligible environment to onboard in geo {location}.",
                "Pass environment ids explicitly, or enable Managed Environments in this geo first.",
            )
        )
    return sort_findings(findings), targets


@task(name="verify-policy-key-access", **_OPTS)
def verify_policy_key_access(
    services: Services, vault_id: str, policy: PolicyInfo, key: KeyInfo
) -> list[Finding]:
    """Re-read the vault and grants: the policy identity must be able to get, wrap and unwrap the key."""
    vault = services.keyvault.get_vault(vault_id)
    assignments = services.arm.list_role_assignments(vault.id, policy.principal_id) if vault.rbac else []
    findings = check_identity_permissions(vault, policy, assignments)
    findings += check_key(services.keyvault.get_key(vault.uri, key.name))
    if services.admin_object_id:
        findings += check_reader_grant(
            services.arm.list_role_assignments(policy.id, services.admin_object_id),
            services.admin_object_id,
            policy.id,
        )
    return findings
