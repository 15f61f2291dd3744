"""The rotation's plan: pure functions from the read state and the parameters to every write it will make.

Two modes (Microsoft's "Change the environment's encryption key" and the version-less key a policy follows):
- key-version: one write, a new version of the policy's key (or none: a rotation policy made it); the
  environments follow the key and are not written to.
- policy-swap: create the new key, deploy the new policy, grant its identity key access (new vault and old vault),
  grant the Power Platform admin Reader, then move each environment (link, or unlink then link).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cmk.domain.models import (
    EnvironmentInfo,
    KeyInfo,
    KeyLifetime,
    PolicyInfo,
    RoleAssignmentInfo,
    RotationPolicyInfo,
    VaultInfo,
    environments_using,
)
from cmk.domain.resource_ids import policy_id as make_policy_id
from cmk.domain.resource_ids import same_id
from cmk.domain.rows import EnvironmentRow
from cmk.moves.engine import SwapMethod
from cmk.plans.change import ChangePlan, PlannedWrite
from cmk.preflight import (
    Finding,
    check_environment,
    check_identity_permissions,
    check_key,
    check_vault,
    check_vault_network,
    find_requested,
    same_geo,
    sort_findings,
)

FLOW = "rotate"
CREATE_KEY_VERSION = "create key version"
SET_ROTATION_POLICY = "set key rotation policy"
CREATE_KEY = "create key"
DEPLOY_POLICY = "deploy policy"
GRANT_KEY_ACCESS = "grant key access"
GRANT_READER = "grant Reader"
LINK = "link"
UNLINK = "unlink"
DEFAULT_KEY = ("RSA", 2048)


def key_label(vault_id: str | None, key_name: str | None, version: str | None = None) -> str:
    """'kv-name/key-name[/version]' for reports."""
    vault = (vault_id or "").rstrip("/").rsplit("/", 1)[-1]
    return f"{vault}/{key_name or ''}" + (f"/{version}" if version else "")


def key_target(vault_uri: str, key_name: str) -> str:
    """The plan target of a key: its URI without a version."""
    return f"{vault_uri.rstrip('/')}/keys/{key_name}"


def policy_problems(policy: PolicyInfo) -> list[str]:
    """Why a policy cannot be the starting point of a rotation."""
    out = []
    if policy.kind.lower() != "encryption":
        out.append(f"it is a {policy.kind} policy, not Encryption")
    if not policy.vault_id or not policy.key_name:
        out.append("it names no Key Vault key")
    if not policy.system_id:
        out.append("it has no systemId yet")
    return out


def not_rotatable(policy: PolicyInfo | None, policy_id: str) -> str:
    """Why the policy cannot be rotated, as one sentence; empty when it can."""
    if policy is None:
        return (
            f"Enterprise policy {policy_id} does not exist (or the Azure identity cannot read it). Check the ARM "
            "id: /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.PowerPlatform/enterprisePolicies/<name>."
        )
    problems = policy_problems(policy)
    return f"Policy {policy.name} cannot be rotated: {'; '.join(problems)}." if problems else ""


# -- findings ---------------------------------------------------------------------------------------------
def pinned_version_finding(policy: PolicyInfo) -> list[Finding]:
    """POLICY_PINS_KEY_VERSION: a policy pinned to a version never uses a new one."""
    if not policy.key_version:
        return []
    return [
        Finding(
            "POLICY_PINS_KEY_VERSION",
            "blocking",
            policy.id,
            f"Policy {policy.name} pins key version {policy.key_version}: a new version would not be used, "
            "and a linked policy cannot be updated.",
            "Use mode policy-swap to move the environments to a new policy with a version-less key.",
        )
    ]


def not_rotated_finding(versions: Sequence[KeyInfo], vault_uri: str, key_name: str) -> list[Finding]:
    """KEY_NOT_ROTATED_YET: adopting a rotation policy's version needs at least two versions."""
    if len(versions) >= 2:
        return []
    return [
        Finding(
            "KEY_NOT_ROTATED_YET",
            "blocking",
            key_target(vault_uri, key_name),
            f"Key {key_name} has a single version: its rotation policy has not rotated it yet.",
            "Run with create_new_version on, or wait until the rotation policy makes a new version.",
        )
    ]


def key_parameters_finding(existing: KeyInfo | None, old_key: KeyInfo | None) -> list[Finding]:
    """KEY_PARAMETERS_DIFFER: an existing new key is adopted only with the old key's type and size."""
    if existing is None or old_key is None or (existing.kty, existing.size) == (old_key.kty, old_key.size):
        return []
    return [
        Finding(
            "KEY_PARAMETERS_DIFFER",
            "blocking",
            existing.kid,
            f"Key {existing.name} exists as {existing.kty} {existing.size}, the old key is "
            f"{old_key.kty} {old_key.size}.",
            "Choose another new_key_name.",
        )
    ]


def new_policy_is_old_finding(old: PolicyInfo, new_policy_id: str) -> list[Finding]:
    """NEW_POLICY_IS_OLD: the new policy must be another resource than the old one."""
    if not same_id(old.id, new_policy_id):
        return []
    return [
        Finding(
            "NEW_POLICY_IS_OLD",
            "blocking",
            old.id,
            "The new policy name is the old policy's.",
            "Choose another new_policy_name.",
        )
    ]


def new_policy_conflict_finding(existing: PolicyInfo | None, vault_id: str, key_name: str) -> list[Finding]:
    """NEW_POLICY_EXISTS: an existing policy of that name is adopted only when it names the new key."""
    if existing is None:
        return []
    if same_id(existing.vault_id, vault_id) and (existing.key_name or "").lower() == key_name.lower():
        return []
    return [
        Finding(
            "NEW_POLICY_EXISTS",
            "blocking",
            existing.id,
            f"Policy {existing.name} already exists with key {key_label(existing.vault_id, existing.key_name)}.",
            "Choose another new_policy_name.",
        )
    ]


def no_environments_finding(targets: Sequence[EnvironmentInfo | str], old: PolicyInfo) -> list[Finding]:
    """NO_ENVIRONMENTS: a swap with nothing to move is refused."""
    if targets:
        return []
    return [
        Finding(
            "NO_ENVIRONMENTS",
            "blocking",
            old.id,
            "No environment to move.",
            "Check policy_id, or pass environment ids.",
        )
    ]


# -- key-version mode -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyVersionState:
    """What the key-version plan is made from."""

    policy: PolicyInfo
    vault: VaultInfo
    current: KeyInfo | None
    environments: list[EnvironmentInfo]
    assignments: list[RoleAssignmentInfo] = field(default_factory=list)
    versions: list[KeyInfo] | None = None  # read only when a rotation policy is to have made the new version
    recorded_previous: str | None = None  # the version an earlier run of this change started from
    rotation: RotationPolicyInfo | None = None  # the key's rotation policy as read


@dataclass
class KeyVersionPlan:
    """The plan and what the apply step needs: the key and the version it replaces."""

    plan: ChangePlan
    vault_id: str
    vault_uri: str
    key_name: str
    previous: str
    lifetime: KeyLifetime | None = None

    @property
    def adopt(self) -> bool:
        """Whether the new version already exists (made by a rotation policy or an earlier run)."""
        return not any(w.action == CREATE_KEY_VERSION for w in self.plan.pending)


def previous_version(state: KeyVersionState, create_new_version: bool) -> str:
    """The version being replaced: recorded by an earlier run, the current one, or the one before the newest."""
    if state.recorded_previous is not None:
        return state.recorded_previous
    current = state.current.version if state.current else ""
    if create_new_version or state.current is None or state.versions is None:
        return current
    return state.versions[-2].version if len(state.versions) >= 2 else current


# A version that is expiring (or expired) is what a new version cures: it does not block making one.
REPLACED_BY_NEW_VERSION = frozenset({"KEY_EXPIRING_SOON", "KEY_EXPIRED"})


def version_being_replaced(
    findings: list[Finding], create_new_version: bool, newer_exists: bool
) -> list[Finding]:
    """The current version's findings; its expiry is information only when this change makes the new version."""
    if not create_new_version or newer_exists:
        return findings
    return [
        replace(f, severity="info", remediation="This rotation creates the new version that replaces it.")
        if f.code in REPLACED_BY_NEW_VERSION
        else f
        for f in findings
    ]


def plan_key_version(
    state: KeyVersionState,
    *,
    change_id: str,
    requested_by: str,
    create_new_version: bool,
    notes: Sequence[str] = (),
    lifetime: KeyLifetime | None = None,
) -> KeyVersionPlan:
    """One key-version write (or none when the version exists) and the environments that follow the key."""
    policy, vault = state.policy, state.vault
    key_name = policy.key_name or ""
    previous = previous_version(state, create_new_version)
    target = key_target(vault.uri, key_name)
    findings = list(check_vault(vault, vault.id))
    findings += check_identity_permissions(vault, policy, state.assignments)
    newer_exists = state.current is not None and bool(previous) and state.current.version != previous
    findings += version_being_replaced(
        check_key(state.current, key_ref=target), create_new_version, newer_exists
    )
    findings += pinned_version_finding(policy)
    if state.recorded_previous is None and not create_new_version and state.versions is not None:
        findings += not_rotated_finding(state.versions, vault.uri, key_name)
    plan = ChangePlan(FLOW, change_id, requested_by, findings=sort_findings(findings), notes=list(notes))
    if newer_exists or not create_new_version:
        how = "made by an earlier run of this change" if create_new_version else "made by the rotation policy"
        version = state.current.version if state.current else ""
        plan.add(PlannedWrite("keyvault", CREATE_KEY_VERSION, target, f"version {version} {how}", True))
    else:
        expiry = f", expires after {lifetime.expires_in}" if lifetime else ""
        plan.add(PlannedWrite("keyvault", CREATE_KEY_VERSION, target, f"replaces version {previous}{expiry}"))
    if lifetime is not None:
        in_place = lifetime.matches(state.rotation)
        plan.add(PlannedWrite("keyvault", SET_ROTATION_POLICY, target, lifetime.detail(), in_place))
    linked = environments_using(state.environments, policy.system_id)
    plan.rows = [
        EnvironmentRow.planned(
            e,
            policy_before=policy.id,
            key_before=key_label(vault.id, key_name, previous),
        )
        for e in linked
    ]
    plan.notes.append(
        f"{len(linked)} environment(s) follow the key and re-wrap within 24 hours; no environment is written to."
    )
    return KeyVersionPlan(plan, vault.id, vault.uri, key_name, previous, lifetime)


# -- policy-swap mode -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwapRequest:
    """The policy-swap parameters, defaults applied and validated."""

    new_policy_name: str
    new_key_name: str
    resource_group: str
    environments: list[str]
    whole_tenant: bool
    swap_method: SwapMethod
    admin_object_id: str
    lifetime: KeyLifetime | None = None


@dataclass(frozen=True)
class SwapState:
    """What the policy-swap plan is made from."""

    old: PolicyInfo
    old_vault: VaultInfo
    new_vault: VaultInfo
    old_key: KeyInfo | None
    new_key: KeyInfo | None  # an existing key of the new name (adopted)
    new_policy: PolicyInfo | None  # an existing policy of the new name (adopted, or a conflict)
    environments: list[EnvironmentInfo]
    old_assignments: list[RoleAssignmentInfo] = field(default_factory=list)
    recorded_targets: list[str] | None = None  # environment ids an earlier run of this change recorded
    new_key_rotation: RotationPolicyInfo | None = None  # the adopted new key's rotation policy


@dataclass
class SwapPlan:
    """The plan and what the apply step needs."""

    plan: ChangePlan
    new_policy_id: str
    key_type: str
    key_size: int
    old_label: str
    new_label: str

    @property
    def targets(self) -> list[str]:
        """The environment ids to move, in plan order."""
        return [r.environment_id for r in self.plan.rows]


def choose_targets(
    envs: Sequence[EnvironmentInfo],
    old: PolicyInfo,
    new_system_id: str | None,
    requested: Sequence[str],
    whole_tenant: bool,
) -> tuple[list[EnvironmentInfo], list[Finding]]:
    """The environments to move: the chosen ids, the whole tenant's CMK environments in the geo, or the old policy's."""
    if requested:
        return find_requested(list(envs), list(requested))
    if whole_tenant:
        return [
            e
            for e in envs
            if e.cmk is not None
            and same_geo(e.location, old.location)
            and (e.cmk.system_id or "").lower() != (new_system_id or "").lower()
        ], []
    return environments_using(envs, old.system_id), []


def environment_findings(env: EnvironmentInfo, stand_in: PolicyInfo) -> list[Finding]:
    """Environment checks for a swap: a running operation is waited for, not blocking; the swap itself is expected."""
    out = []
    for f in check_environment(env, stand_in):
        if f.code == "ENV_LINKED_TO_OTHER_POLICY":
            continue
        busy = f.code == "ENV_OPERATION_RUNNING" or (
            f.code == "ENV_DISABLED" and (env.runtime_reason or "") == "LifecycleOperationInProgress"
        )
        if busy:
            f = Finding(f.code, "warning", f.target, f.message, "The rotation waits for it to finish.")
        out.append(f)
    return out


def _stand_in(request: SwapRequest, old: PolicyInfo, vault: VaultInfo) -> PolicyInfo:
    """The new policy as the environment checks need it (its geo), before it exists."""
    return PolicyInfo(
        id="",
        name=request.new_policy_name,
        resource_group=request.resource_group,
        location=old.location,
        kind="Encryption",
        system_id=None,
        principal_id=None,
        tenant_id=None,
        vault_id=vault.id,
        key_name=request.new_key_name,
        key_version=None,
    )


def _targets(state: SwapState, request: SwapRequest) -> tuple[list[EnvironmentInfo], list[Finding]]:
    """The environments to move and their findings; a re-run keeps the recorded set (they may be mid-move)."""
    if state.recorded_targets is not None:
        by_id = {e.id.lower(): e for e in state.environments}
        return [by_id[i.lower()] for i in state.recorded_targets if i.lower() in by_id], []
    new_sid = state.new_policy.system_id if state.new_policy else None
    targets, findings = choose_targets(
        state.environments, state.old, new_sid, request.environments, request.whole_tenant
    )
    stand_in = _stand_in(request, state.old, state.new_vault)
    for env in targets:
        findings += environment_findings(env, stand_in)
    return targets, findings


def swap_policy_id(old: PolicyInfo, request: SwapRequest) -> str:
    """The ARM id the new policy gets: the old policy's subscription, the chosen resource group and name."""
    return make_policy_id(old.id.split("/")[2], request.resource_group, request.new_policy_name)


def plan_policy_swap(
    state: SwapState, request: SwapRequest, *, change_id: str, requested_by: str, notes: Sequence[str] = ()
) -> SwapPlan:
    """Every write of a policy swap, in Microsoft's order, with its preflight findings."""
    old, old_vault, new_vault = state.old, state.old_vault, state.new_vault
    new_id = swap_policy_id(old, request)
    kty, size = (state.old_key.kty, state.old_key.size or 2048) if state.old_key else DEFAULT_KEY
    targets, findings = _targets(state, request)
    findings += check_vault(new_vault, new_vault.id)
    if not same_id(old_vault.id, new_vault.id):
        # the old policy keeps using its key until each environment moves: its vault must stay reachable
        findings += check_vault_network(old_vault)
    # a swap re-wraps with the old key, so the old identity must still be able to use it
    findings += check_identity_permissions(old_vault, old, state.old_assignments)
    findings += check_key(state.old_key, key_ref=key_target(old_vault.uri, old.key_name or ""))
    if state.new_key is not None:
        findings += check_key(state.new_key)
    findings += key_parameters_finding(state.new_key, state.old_key)
    findings += new_policy_is_old_finding(old, new_id)
    findings += new_policy_conflict_finding(state.new_policy, new_vault.id, request.new_key_name)
    findings += no_environments_finding(targets, old)

    plan = ChangePlan(FLOW, change_id, requested_by, findings=sort_findings(findings), notes=list(notes))
    new_key_ref = key_target(new_vault.uri, request.new_key_name)
    adopted = state.new_key is not None
    expiry = f", expires after {request.lifetime.expires_in}" if request.lifetime else ""
    plan.add(PlannedWrite("keyvault", CREATE_KEY, new_key_ref, f"{kty} {size}{expiry}", in_place=adopted))
    if request.lifetime is not None:
        in_place = adopted and request.lifetime.matches(state.new_key_rotation)
        plan.add(
            PlannedWrite("keyvault", SET_ROTATION_POLICY, new_key_ref, request.lifetime.detail(), in_place)
        )
    plan.add(
        PlannedWrite(
            "arm",
            DEPLOY_POLICY,
            new_id,
            f"Encryption, geo {old.location}, key {key_label(new_vault.id, request.new_key_name)}",
            in_place=state.new_policy is not None,
        )
    )
    vaults = [(new_vault, "the new key")]
    if not same_id(old_vault.id, new_vault.id):
        vaults.append((old_vault, "the old key, as Microsoft advises"))
    for vault, why in vaults:
        how = (
            "role Key Vault Crypto Service Encryption User"
            if vault.rbac
            else "access policy get/wrapKey/unwrapKey"
        )
        plan.add(
            PlannedWrite("arm", GRANT_KEY_ACCESS, vault.id, f"{how} for the new policy's identity ({why})")
        )
    if request.admin_object_id:
        plan.add(PlannedWrite("arm", GRANT_READER, new_id, f"Power Platform admin {request.admin_object_id}"))
    else:
        plan.notes.append(
            "No Power Platform admin object id is known: Reader on the new policy is not granted."
        )
    old_label = key_label(old_vault.id, old.key_name)
    new_label = key_label(new_vault.id, request.new_key_name)
    old_sid = (old.system_id or "").lower()
    new_sid = ((state.new_policy.system_id if state.new_policy else None) or "").lower()
    for env in targets:
        link_status, link_sid = ((env.cmk.status or ""), (env.cmk.system_id or "")) if env.cmk else ("", "")
        linked = link_status.lower() == "linked"
        moved = linked and bool(new_sid) and link_sid.lower() == new_sid
        if request.swap_method == "unlink-then-link" and linked and not moved:
            plan.add(
                PlannedWrite("powerplatform", UNLINK, env.id, f"{env.display_name}: back to Microsoft's key")
            )
        plan.add(
            PlannedWrite(
                "powerplatform",
                LINK,
                env.id,
                f"{env.display_name}: to {request.new_policy_name}",
                in_place=moved,
            )
        )
        on_old = env.cmk is not None and (env.cmk.system_id or "").lower() == old_sid
        plan.rows.append(
            EnvironmentRow.planned(
                env,
                policy_before=(env.cmk.policy_arm_id or "") if env.cmk else "",
                key_before=old_label if on_old else "",
            )
        )
    return SwapPlan(plan, new_id, kty, size, old_label, new_label)


# -- report -----------------------------------------------------------------------------------------------
def key_after(
    row: EnvironmentRow,
    *,
    new_policy_id: str,
    new_label: str,
    old_policy_id: str,
    old_label: str,
) -> dict[str, str]:
    """policy_after / key_after (and a note) from the environment's read-back state, not from its status."""
    if not row.read_back:  # the environment was not read after the run
        if row.status == "not-started":
            return {
                "policy_after": row.policy_before,
                "key_after": row.key_before,
                "note_after": "not started: unchanged",
            }
        return {"policy_after": "", "key_after": "", "note_after": "unknown: not read back after the run"}
    policy_after = row.policy_after
    on_microsoft = row.key_managed_by_after.lower() == "microsoft"
    if not policy_after or on_microsoft:
        failed_link = f" (its link to {policy_after} did not complete)" if policy_after else ""
        return {
            "policy_after": policy_after,
            "key_after": "",
            "note_after": f"on the Microsoft-managed key{failed_link}",
        }
    if same_id(policy_after, new_policy_id):
        return {"policy_after": policy_after, "key_after": new_label, "note_after": ""}
    if same_id(policy_after, old_policy_id):
        return {"policy_after": policy_after, "key_after": old_label, "note_after": "still on the old policy"}
    return {"policy_after": policy_after, "key_after": "", "note_after": "on another policy"}
