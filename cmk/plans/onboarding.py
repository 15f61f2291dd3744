"""The onboarding plan: from what exists and what is asked to every write onboarding makes, in Microsoft's order.

Pure: no prefect, no I/O. The flow reads the state (GET only), this module decides, the approval form shows the
result, and only then are the writes made, each one checked against the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from cmk.domain.models import (
    EnvironmentInfo,
    KeyInfo,
    KeyLifetime,
    PolicyInfo,
    RoleAssignmentInfo,
    RotationPolicyInfo,
    VaultInfo,
)
from cmk.domain.resource_ids import same_id
from cmk.domain.rows import EnvironmentRow
from cmk.plans.change import ChangePlan, PlannedWrite, environment_writes
from cmk.preflight import (
    Finding,
    check_environment,
    check_identity_permissions,
    check_key,
    check_reader_grant,
    check_vault,
    find_requested,
    same_geo,
    sort_findings,
)
from cmk.preflight.parameters import Parameters

FLOW = "onboard"
PROVIDER = "Microsoft.PowerPlatform"
REGISTER_PROVIDER = "register provider"
CREATE_KEY = "create key"
SET_ROTATION_POLICY = "set key rotation policy"
DEFAULT_LIFETIME = KeyLifetime("P2Y", "P18M", "P30D")
DEPLOY_POLICY = "deploy enterprise policy"
GRANT_KEY_ACCESS = "grant key access"
GRANT_READER = "grant Reader"
MAKE_MANAGED = "enable Managed Environment"
LINK = "link"
KEY_ROLE = "Key Vault Crypto Service Encryption User"
MAX_CONCURRENCY = 32


@dataclass(frozen=True)
class OnboardingRequest:
    """The validated parameters of one onboarding."""

    change_id: str
    requested_by: str
    vault_id: str
    policy_name: str
    resource_group: str
    location: str
    key_name: str
    key_type: str = "RSA"
    key_size: int = 2048
    environments: tuple[str, ...] = ()
    admin_object_id: str = ""
    notes: tuple[str, ...] = ()
    lifetime: KeyLifetime | None = DEFAULT_LIFETIME
    make_managed: tuple[str, ...] = ()  # environment ids to make Managed Environments before linking


@dataclass(frozen=True)
class OnboardingState:
    """What exists before onboarding, as read (GET only) from ARM, Key Vault and Power Platform."""

    policy_id: str
    vault: VaultInfo | None
    key: KeyInfo | None
    policy: PolicyInfo | None
    provider_state: str
    environments: list[EnvironmentInfo] = field(default_factory=list)
    key_access: list[RoleAssignmentInfo] = field(default_factory=list)  # the policy identity's, RBAC vaults
    reader_grants: list[RoleAssignmentInfo] = field(default_factory=list)  # the admin's, on the policy
    rotation: RotationPolicyInfo | None = None  # the existing key's


def onboarding_request(
    *,
    change_id: str,
    requested_by: str,
    vault_id: str,
    policy_name: str,
    resource_group: str,
    location: str,
    key_name: str,
    key_type: str,
    key_size: int,
    environments: Sequence[str],
    admin_object_id: str,
    operation_timeout_seconds: float,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    key_expires_in: str = DEFAULT_LIFETIME.expires_in,
    key_rotate_after: str = DEFAULT_LIFETIME.rotate_after_create or "",
    key_notify_before_expiry: str = DEFAULT_LIFETIME.notify_before_expiry or "",
    make_managed: Sequence[str] = (),
) -> OnboardingRequest:
    """The flow's parameters checked against Azure's rules; raises InvalidParameterError listing every refusal."""
    p = Parameters()
    lifetime = p.key_lifetime(key_expires_in, key_rotate_after, key_notify_before_expiry)
    request = OnboardingRequest(
        change_id=p.change_id(change_id),
        requested_by=p.requester(requested_by),
        vault_id=(vault_id or "").strip(),
        policy_name=p.policy_name(policy_name),
        resource_group=p.resource_group(resource_group),
        location=p.geo(location),
        key_name=p.key_name(key_name),
        key_type=key_type,
        key_size=key_size,
        environments=tuple(p.environment_ids(environments)),
        admin_object_id=p.guid(admin_object_id, "powerplatform_admin_object_id", optional=True),
        lifetime=lifetime,
        make_managed=tuple(p.environment_ids(make_managed, "make_managed")),
    )
    p.vault_id(vault_id)
    if key_type not in ("RSA", "RSA-HSM") or key_size not in (2048, 3072):
        p.refuse(
            f"key_type {key_type!r} / key_size {key_size!r}: Power Platform accepts RSA or RSA-HSM, 2048 or 3072."
        )
    p.timeout(operation_timeout_seconds)
    p.waves(concurrency, canary_size, failure_threshold, MAX_CONCURRENCY)
    p.done()
    return replace(request, notes=tuple(p.notes))


def key_target(vault: VaultInfo | None, vault_id: str, key_name: str) -> str:
    """The key's address: vault URI + /keys/name (the vault id when the vault could not be read)."""
    base = vault.uri.rstrip("/") if vault else vault_id
    return f"{base}/keys/{key_name}"


def stand_in_policy(location: str, policy_id: str = "") -> PolicyInfo:
    """The policy onboarding will create, so environment checks can compare geos before it exists."""
    return PolicyInfo(
        id=policy_id,
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
    envs: list[EnvironmentInfo], requested: list[str] | tuple[str, ...], location: str
) -> tuple[list[EnvironmentInfo], list[Finding]]:
    """The requested environments (unknown ids become findings), or every eligible one in the geo."""
    if requested:
        return find_requested(envs, list(requested))
    policy = stand_in_policy(location)
    eligible = [
        e
        for e in envs
        if same_geo(e.location, location)
        and not [f for f in check_environment(e, policy) if f.severity == "blocking"]
        and not (e.cmk and (e.cmk.status or "").lower() == "linked")
        and not e.byok
    ]
    return eligible, []


def _finding(code: str, severity: str, target: str, message: str, remediation: str) -> Finding:
    return Finding(code, severity, target, message, remediation)  # type: ignore[arg-type]


def _key_step(
    req: OnboardingRequest, state: OnboardingState, plan: ChangePlan, target: str, now: datetime | None
) -> None:
    """Create the key, or adopt the existing one when it has the asked type and size."""
    existing = state.key
    if existing is None:
        expiry = f", expires after {req.lifetime.expires_in}" if req.lifetime else ""
        plan.add(
            PlannedWrite(
                "keyvault", CREATE_KEY, target, f"{req.key_type} {req.key_size}, version-less{expiry}"
            )
        )
        plan.findings.append(
            _finding(
                "KEY_WILL_BE_CREATED",
                "info",
                target,
                f"Key {req.key_name} does not exist yet; a {req.key_type} {req.key_size} key will be created.",
                "Nothing to do.",
            )
        )
        return
    plan.add(
        PlannedWrite(
            "keyvault",
            CREATE_KEY,
            target,
            f"exists as {existing.kty} {existing.size}, version {existing.version}: adopted",
            in_place=True,
        )
    )
    plan.findings.extend(check_key(existing, now))
    if existing.kty != req.key_type or existing.size != req.key_size:
        plan.findings.append(
            _finding(
                "KEY_PARAMETERS_DIFFER",
                "blocking",
                existing.kid,
                f"Key {req.key_name} exists as {existing.kty} {existing.size}, not {req.key_type} {req.key_size}.",
                "Adopt it by passing its real type and size, or choose another key name.",
            )
        )


def _rotation_policy_step(
    req: OnboardingRequest, state: OnboardingState, plan: ChangePlan, target: str
) -> None:
    """The key's expiry and rotation policy, set right after the key is created or adopted."""
    if req.lifetime is None:
        return
    in_place = state.key is not None and req.lifetime.matches(state.rotation)
    plan.add(PlannedWrite("keyvault", SET_ROTATION_POLICY, target, req.lifetime.detail(), in_place))


def _policy_step(req: OnboardingRequest, state: OnboardingState, plan: ChangePlan) -> PolicyInfo | None:
    """Deploy the policy, or use the existing one when it already points at this vault and key."""
    existing = state.policy
    detail = f"Encryption, geo {req.location}, key {req.key_name} (version-less) in vault {req.vault_id}"
    if existing is None:
        plan.add(PlannedWrite("arm", DEPLOY_POLICY, state.policy_id, detail))
        plan.notes.append(
            f"Policy {req.policy_name} does not exist yet, so its systemId and managed identity do not exist "
            "yet either: ARM creates them when the policy is deployed, after approval. The key access in "
            "this plan is granted to that new identity."
        )
        return None
    matches = (
        existing.kind.lower() == "encryption"
        and same_geo(existing.location, req.location)
        and same_id(existing.vault_id, req.vault_id)
        and (existing.key_name or "").lower() == req.key_name.lower()
        and not existing.key_version
    )
    if not matches:
        plan.findings.append(
            _finding(
                "POLICY_EXISTS_DIFFERENT",
                "blocking",
                existing.id,
                f"Policy {existing.name} already exists as {existing.kind} in {existing.location} for key "
                f"{existing.key_name} in {existing.vault_id}; onboarding would redeploy it.",
                "Choose another policy name; to move environments to another key use the rotate flow.",
            )
        )
    plan.add(PlannedWrite("arm", DEPLOY_POLICY, state.policy_id, detail, in_place=matches))
    plan.notes.append(
        f"Policy {existing.name} exists: systemId `{existing.system_id or 'not yet assigned'}`, identity "
        f"`{existing.principal_id or 'not yet assigned'}`."
    )
    return existing


def _grant_steps(
    req: OnboardingRequest, state: OnboardingState, plan: ChangePlan, policy: PolicyInfo | None
) -> None:
    """Key access for the policy identity (by vault mode) and Reader on the policy for the admin."""
    vault = state.vault
    if vault is not None:
        how = f"role {KEY_ROLE}" if vault.rbac else "access policy get/wrapKey/unwrapKey"
        held = bool(
            policy and policy.principal_id and not check_identity_permissions(vault, policy, state.key_access)
        )
        plan.add(
            PlannedWrite(
                "arm" if vault.rbac else "keyvault",
                GRANT_KEY_ACCESS,
                vault.id,
                f"{how} for the policy identity",
                in_place=held,
            )
        )
    if not req.admin_object_id:
        plan.findings.append(
            _finding(
                "READER_ADMIN_UNKNOWN",
                "warning",
                "powerplatform_admin_object_id",
                "No Power Platform admin object id is known, so Reader on the policy will not be granted.",
                "Set admin_object_id on the Power Platform connection block or pass powerplatform_admin_object_id.",
            )
        )
        return
    has_reader = policy is not None and not check_reader_grant(
        state.reader_grants, req.admin_object_id, policy.id
    )
    plan.add(
        PlannedWrite(
            "arm",
            GRANT_READER,
            state.policy_id,
            f"to the Power Platform admin {req.admin_object_id}",
            in_place=has_reader,
        )
    )


def _as_managed(envs: list[EnvironmentInfo], ids: Sequence[str]) -> list[EnvironmentInfo]:
    """The environments as they will be once the asked ones are Managed Environments."""
    wanted = {i.lower() for i in ids}
    return [replace(e, managed=True) if e.id.lower() in wanted else e for e in envs]


def _managed_steps(req: OnboardingRequest, state: OnboardingState, plan: ChangePlan) -> None:
    """One Managed Environment write per asked environment (in place when it is one already)."""
    if not req.make_managed:
        return
    by_id = {e.id.lower(): e for e in state.environments}
    linked = {r.environment_id.lower() for r in plan.rows}
    for env_id in req.make_managed:
        env = by_id.get(env_id.lower())
        if env is None or env_id.lower() not in linked:
            plan.findings.append(
                _finding(
                    "MAKE_MANAGED_NOT_LINKED",
                    "blocking",
                    env_id,
                    f"make_managed names {env_id}, which this onboarding does not link"
                    + (" (no such environment)." if env is None else "."),
                    "Name only environments that are onboarded here (pass them in environments too).",
                )
            )
            continue
        detail = f"{env.display_name}: Managed Environment (protectionLevel Standard) before it is linked"
        plan.add(PlannedWrite("powerplatform", MAKE_MANAGED, env.id, detail, in_place=env.managed))


def _environment_steps(
    req: OnboardingRequest, state: OnboardingState, plan: ChangePlan, policy: PolicyInfo | None
) -> None:
    """Pick the environments, check each against the (planned) policy, and plan one link each."""
    envs = _as_managed(state.environments, req.make_managed)
    targets, missing = choose_environments(envs, req.environments, req.location)
    plan.findings.extend(missing)
    against = policy or stand_in_policy(req.location, state.policy_id)
    for env in targets:
        plan.findings.extend(check_environment(env, against))
    if not targets:
        plan.findings.append(
            _finding(
                "NO_ENVIRONMENTS",
                "blocking",
                req.location,
                f"No eligible environment to onboard in geo {req.location}.",
                "Pass environment ids explicitly, or enable Managed Environments in this geo first.",
            )
        )
    plan.rows = [EnvironmentRow.planned(e) for e in targets]
    _managed_steps(req, state, plan)
    plan.writes += environment_writes(LINK, plan.rows)


def plan_onboarding(
    req: OnboardingRequest, state: OnboardingState, now: datetime | None = None
) -> ChangePlan:
    """Every write of this onboarding in order, what is already in place, and the preflight findings."""
    plan = ChangePlan(FLOW, req.change_id, req.requested_by, notes=list(req.notes))
    plan.findings.extend(check_vault(state.vault, req.vault_id))
    registered = state.provider_state == "Registered"
    plan.add(
        PlannedWrite(
            "arm",
            REGISTER_PROVIDER,
            PROVIDER,
            f"on the subscription (now {state.provider_state})",
            registered,
        )
    )
    target = key_target(state.vault, req.vault_id, req.key_name)
    if state.vault is not None:
        _key_step(req, state, plan, target, now)
        _rotation_policy_step(req, state, plan, target)
    policy = _policy_step(req, state, plan)
    _grant_steps(req, state, plan, policy)
    _environment_steps(req, state, plan, policy)
    plan.findings = sort_findings(plan.findings)
    return plan


def planned_managed(plan: ChangePlan) -> list[str]:
    """The environment ids the plan makes Managed Environments, in order."""
    return [w.target for w in plan.pending if w.action == MAKE_MANAGED]


def planned_links(plan: ChangePlan) -> list[str]:
    """The environment ids the plan links, in order."""
    return [w.target for w in plan.pending if w.action == LINK]


def plan_to_dict(plan: ChangePlan) -> dict[str, Any]:
    """JSON-safe form for the change's checkpoint."""
    return {
        "flow": plan.flow,
        "change_id": plan.change_id,
        "requested_by": plan.requested_by,
        "writes": [asdict(w) for w in plan.writes],
        "findings": [f.to_dict() for f in plan.findings],
        "rows": [r.to_checkpoint() for r in plan.rows],
        "notes": plan.notes,
    }


def plan_from_dict(data: dict[str, Any]) -> ChangePlan | None:
    """The plan recorded by plan_to_dict, or None for a checkpoint without one (an older run)."""
    if "writes" not in data:
        return None
    return ChangePlan(
        flow=data["flow"],
        change_id=data["change_id"],
        requested_by=data["requested_by"],
        writes=[PlannedWrite(**w) for w in data["writes"]],
        findings=[Finding(**f) for f in data.get("findings", [])],
        rows=[EnvironmentRow.of(r) for r in data.get("rows", [])],
        notes=list(data.get("notes", [])),
    )
