"""Decommission lock and unlock: the blast radius, and the key-access grants a lock removes and unlock restores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from cmk.domain.models import (
    EnvironmentInfo,
    KeyInfo,
    PolicyInfo,
    RoleAssignmentInfo,
    VaultInfo,
    environments_using,
)
from cmk.domain.resource_ids import parse_vault_id, scope_covers
from cmk.domain.roles import KEY_WRAP_ROLES
from cmk.domain.rows import EnvironmentRow
from cmk.plans.change import ChangePlan, PlannedWrite, Service
from cmk.preflight import Finding, check_vault_network

RevokeMethod = Literal["access_policy", "role_assignment", "disable_key"]
REVOKE_METHODS: tuple[str, ...] = ("access_policy", "role_assignment", "disable_key")
# LOCK25: an environment not restored is deleted after 7 days (sandbox) or 30 days (production).
DELETION_DAYS = {"sandbox": 7, "production": 30}
# Other SKUs (Developer, Default) are not documented: assume the shorter, safer deadline.
UNDOCUMENTED_SKU_DAYS = 7


# VaultInfo lower-cases key permissions; put back the service's own spelling when restoring them.
_KEY_PERMISSION_CASE = {
    p.lower(): p
    for p in (
        "wrapKey unwrapKey get list create update import delete backup restore recover purge encrypt decrypt "
        "sign verify release rotate getrotationpolicy setrotationpolicy all"
    ).split()
}


def canonical_key_permissions(permissions: frozenset[str] | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Key permissions in the service's spelling (wrapKey, unwrapKey, get), sorted case-insensitively."""
    return tuple(sorted((_KEY_PERMISSION_CASE.get(p.lower(), p) for p in permissions), key=str.lower))


def deletion_days(sku: str | None) -> tuple[int, bool]:
    """Days until a locked environment of this SKU is deleted, and whether that number is documented."""
    days = DELETION_DAYS.get((sku or "").lower())
    if days is None:
        return UNDOCUMENTED_SKU_DAYS, False
    return days, True


ADMIN_CENTER = "admin-center"  # an unlock row left to the admin center's "Re-enable environment" (no API)


@dataclass
class LockRow:
    """One environment of a lock or unlock: its runtime before and after, and when a locked one is deleted.

    Not an EnvironmentRow: these reports are about runtime state and deletion deadlines, not keys and policies.
    """

    environment_id: str
    name: str = ""
    geo: str = ""
    sku: str = ""
    policy: str = ""
    runtime_before: str = ""
    link_status: str = ""
    deleted_after_days: int | str = ""
    deletion_deadline: str = ""
    deadline_documented: bool | str = ""
    runtime_after: str = ""
    status: str = ""
    operation_id: str = ""
    duration_seconds: float | str = ""
    error: str = ""

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> LockRow:
        """A row from its dict form (a checkpoint's, also of runs before typed rows); other keys are left."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: ("" if v is None else v) for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """Every field, for checkpoints and run results."""
        return asdict(self)

    def blast_dict(self) -> dict[str, Any]:
        """The blast-radius facts only (what the lock's plan records and its dry run returns)."""
        return {name: getattr(self, name) for name in BLAST_FIELDS}

    def environment_row(self) -> EnvironmentRow:
        """The environment's facts as a report row of the shared table."""
        return EnvironmentRow(self.environment_id, name=self.name, geo=self.geo, sku=self.sku)


BLAST_FIELDS = [
    f.name
    for f in fields(LockRow)
    if f.name not in {"runtime_after", "status", "operation_id", "duration_seconds", "error"}
]


def blast_radius(
    envs: list[EnvironmentInfo], policy: PolicyInfo, locked_at: datetime, policy_name: str = ""
) -> list[LockRow]:
    """One row per environment that goes offline when the policy loses key access, with its deletion deadline."""
    rows = []
    for env in envs:
        if not env.uses_policy(policy.system_id):
            continue
        days, documented = deletion_days(env.sku)
        rows.append(
            LockRow(
                env.id,
                name=env.display_name or "",
                geo=env.location or "",
                sku=env.sku or "",
                policy=policy_name or policy.name,
                runtime_before=env.runtime_state or "",
                link_status=(env.cmk.status or "") if env.cmk else "",
                deleted_after_days=days,
                deletion_deadline=(locked_at + timedelta(days=days)).isoformat(timespec="minutes"),
                deadline_documented=documented,
            )
        )
    return rows


@dataclass(frozen=True)
class Grant:
    """One piece of key access held by a policy identity: what lock removes and unlock puts back exactly."""

    method: RevokeMethod
    vault_id: str
    principal_id: str = ""  # the policy identity (for disable_key: informational)
    key_permissions: tuple[str, ...] = ()  # access_policy: the entry's key permissions
    scope: str = ""  # role_assignment: where the role was assigned
    role_definition_id: str = ""  # role_assignment: the role
    assignment_id: str = ""  # role_assignment: the removed assignment
    principal_type: str = "ServicePrincipal"
    vault_uri: str = ""  # disable_key
    key_name: str = ""  # disable_key
    key_version: str = ""  # disable_key: the version that was disabled

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the journal and checkpoints."""
        data = asdict(self)
        data["key_permissions"] = list(self.key_permissions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grant:
        """A Grant from to_dict() output or a hand-written dict; ValueError says what is missing."""
        if not isinstance(data, dict):
            raise ValueError(f"A grant must be an object with a 'method'; got {data!r}.")
        method = data.get("method")
        if method not in REVOKE_METHODS:
            raise ValueError(f"Grant method {method!r} is not one of {', '.join(REVOKE_METHODS)}.")
        required = {
            "access_policy": ("vault_id", "principal_id", "key_permissions"),
            "role_assignment": ("vault_id", "principal_id", "scope", "role_definition_id"),
            "disable_key": ("vault_id", "vault_uri", "key_name", "key_version"),
        }[method]
        missing = [name for name in required if not data.get(name)]
        if missing:
            raise ValueError(f"A {method} grant needs {', '.join(missing)}; got {sorted(data)}.")
        parse_vault_id(data["vault_id"])
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known and v is not None}
        values["key_permissions"] = tuple(str(p) for p in values.get("key_permissions", ()))
        return cls(**values)

    @property
    def target(self) -> str:
        """What the grant's write touches, as the plan names it."""
        if self.method == "access_policy":
            return access_policy_target(self.vault_id, self.principal_id)
        if self.method == "role_assignment":
            return self.assignment_id or f"{self.scope}:{self.role_definition_id}:{self.principal_id}"
        return f"{self.vault_uri}/keys/{self.key_name}/{self.key_version}"

    def describe(self) -> str:
        """One line saying what this access is."""
        vault = self.vault_id.rsplit("/", 1)[-1]
        if self.method == "access_policy":
            return (
                f"access-policy entry of `{self.principal_id}` on vault `{vault}` "
                f"(key permissions {', '.join(self.key_permissions)})"
            )
        if self.method == "role_assignment":
            role = self.role_definition_id.rsplit("/", 1)[-1]
            return f"role `{role}` of `{self.principal_id}` at scope `{self.scope}`"
        return f"key `{self.key_name}` version `{self.key_version}` in vault `{vault}` (enabled)"


def shares_key(policy: PolicyInfo, other: PolicyInfo) -> bool:
    """Whether two policies use the same key in the same vault (disabling it locks both)."""
    return (
        bool(policy.vault_id and policy.key_name)
        and (other.vault_id or "").lower() == (policy.vault_id or "").lower()
        and (other.key_name or "").lower() == (policy.key_name or "").lower()
    )


def default_method(vault: VaultInfo) -> RevokeMethod:
    """Remove what grants access in this vault's permission model."""
    return "role_assignment" if vault.rbac else "access_policy"


def plan_revocation(
    method: RevokeMethod,
    vault: VaultInfo,
    policy: PolicyInfo,
    assignments: list[RoleAssignmentInfo],
    key: KeyInfo | None,
) -> tuple[list[Grant], str | None]:
    """The grants to remove for this method, or a reason (with its fix) why the method cannot lock the policy."""
    principal = policy.principal_id or ""
    if not principal:
        return [], "the policy has no managed identity, so it holds no key access to revoke"
    if method == "access_policy":
        if vault.rbac:
            return [], (
                f"vault {vault.name} uses Azure RBAC, where access policies have no effect; "
                "choose method role_assignment or disable_key"
            )
        entry = vault.access_policy_for(principal)
        if entry is None:
            return [], (
                f"the policy identity has no access-policy entry on vault {vault.name}: nothing to remove "
                "(is the policy already locked?)"
            )
        grant = Grant(
            method="access_policy",
            vault_id=vault.id,
            principal_id=entry.object_id,
            key_permissions=canonical_key_permissions(entry.key_permissions),
        )
        return [grant], None
    if method == "role_assignment":
        if not vault.rbac:
            return [], (
                f"vault {vault.name} uses access policies, where role assignments grant no key access; "
                "choose method access_policy or disable_key"
            )
        held = [
            a
            for a in assignments
            if a.principal_id.lower() == principal.lower()
            and a.role_guid in KEY_WRAP_ROLES
            and scope_covers(a.scope, vault.id)
        ]
        if not held:
            return [], (
                f"the policy identity holds no key role on vault {vault.name}: nothing to remove "
                "(is the policy already locked?)"
            )
        grants = [
            Grant(
                method="role_assignment",
                vault_id=vault.id,
                principal_id=a.principal_id,
                scope=a.scope,
                role_definition_id=a.role_definition_id,
                assignment_id=a.id,
                principal_type=a.principal_type or "ServicePrincipal",
            )
            for a in held
        ]
        return grants, None
    if key is None:
        return [], f"the policy's key {policy.key_name} was not found in vault {vault.name}"
    if not key.enabled:
        return [], f"key {key.name} version {key.version} is already disabled (is the policy already locked?)"
    grant = Grant(
        method="disable_key",
        vault_id=vault.id,
        principal_id=principal,
        vault_uri=key.vault_uri,
        key_name=key.name,
        key_version=key.version,
    )
    return [grant], None


def grants_from_journal(
    entries: list[dict[str, Any]], lock_change_id: str, policy_id: str = ""
) -> tuple[list[Grant], str, list[LockRow]]:
    """From a lock's journal entries: the grants it removed (once each), its policy id and its blast radius."""
    if not entries:
        raise ValueError(
            f"The audit journal has no revoked access for lock change {lock_change_id}: check the change id, or "
            "pass the access to restore as grants with policy_id."
        )
    recorded_policy = entries[0]["target"]
    if policy_id and policy_id.lower() != recorded_policy.lower():
        raise ValueError(f"Lock {lock_change_id} locked {recorded_policy}, not {policy_id}.")
    restore: list[Grant] = []
    for entry in entries:
        grant = Grant.from_dict(entry["before"])
        if grant not in restore:
            restore.append(grant)
    blast = [LockRow(e) for e in (entries[0].get("detail") or {}).get("blast_radius", [])]
    return restore, recorded_policy, blast


def restore_targets(blast: list[LockRow], envs: list[EnvironmentInfo], policy: PolicyInfo) -> list[str]:
    """Environments to re-enable: those the lock took offline (or, unknown, every one linked to the policy)."""
    if blast:
        return [row.environment_id for row in blast]
    return [e.id for e in environments_using(envs, policy.system_id)]


# The write each grant method makes on lock (revoke) and on unlock (restore), and where it is sent.
REVOKE_ACTIONS = {
    "access_policy": "remove-access-policy",
    "role_assignment": "delete-role-assignment",
    "disable_key": "disable-key-version",
}
RESTORE_ACTIONS = {
    "access_policy": "restore-access-policy",
    "role_assignment": "restore-role-assignment",
    "disable_key": "enable-key-version",
}
_GRANT_SERVICE: dict[str, Service] = {
    "access_policy": "arm",
    "role_assignment": "arm",
    "disable_key": "keyvault",
}
ENABLE_ACTION = "enable-environment"


def access_policy_target(vault_id: str, principal_id: str) -> str:
    """The plan's name for one principal's access-policy entry on a vault."""
    return f"{vault_id}/accessPolicies/{principal_id}"


def revoke_write(grant: Grant, *, done: bool = False) -> PlannedWrite:
    """The write that removes this grant (in place when an earlier run removed it)."""
    return PlannedWrite(
        _GRANT_SERVICE[grant.method],
        REVOKE_ACTIONS[grant.method],
        grant.target,
        grant.describe(),
        in_place=done,
    )


def restore_write(grant: Grant, *, present: bool = False) -> PlannedWrite:
    """The write that puts this grant back (in place when it is there already)."""
    return PlannedWrite(
        _GRANT_SERVICE[grant.method],
        RESTORE_ACTIONS[grant.method],
        grant.target,
        grant.describe(),
        in_place=present,
    )


def plan_lock(
    change_id: str,
    requested_by: str,
    policy: PolicyInfo,
    method: str,
    grants: list[Grant],
    reason: str | None,
    blast: list[LockRow],
    *,
    revoked: bool = False,
    notes: list[str] | None = None,
) -> ChangePlan[LockRow]:
    """The lock's writes: revoke each grant; blocked (no write) when the method cannot lock the policy."""
    plan = ChangePlan[LockRow]("lock", change_id, requested_by, rows=list(blast), notes=list(notes or []))
    if reason is not None:
        plan.findings.append(
            Finding(
                "LOCK_METHOD_NOT_POSSIBLE",
                "blocking",
                policy.id,
                f"Cannot lock {policy.name} by {method}: {reason}.",
                "Choose another method, or check that the policy is not locked already.",
            )
        )
        return plan
    for grant in grants:
        plan.add(revoke_write(grant, done=revoked))
    return plan


def foreign_grants(grants: list[Grant], policy: PolicyInfo) -> list[Grant]:
    """Grants (other than a disabled key) for another identity than the policy's: never restored."""
    own = (policy.principal_id or "").lower()
    return [g for g in grants if g.method != "disable_key" and g.principal_id.lower() != own]


def grant_present(
    grant: Grant, vault: VaultInfo | None, assignments: list[RoleAssignmentInfo], key: KeyInfo | None
) -> bool:
    """Whether the access a grant describes exists now (so restoring it writes nothing)."""
    if grant.method == "access_policy":
        entry = vault.access_policy_for(grant.principal_id) if vault else None
        return entry is not None and all(entry.allows(p) for p in grant.key_permissions)
    if grant.method == "role_assignment":
        wanted = grant.role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
        return any(
            a.principal_id.lower() == grant.principal_id.lower()
            and a.role_guid == wanted
            and a.scope.lower() == grant.scope.lower()
            for a in assignments
        )
    return key is not None and key.enabled


def plan_unlock(
    change_id: str,
    requested_by: str,
    policy: PolicyInfo | None,
    policy_id: str,
    grants: list[Grant],
    present: list[bool],
    envs: list[EnvironmentInfo],
    targets: list[str],
    *,
    explicit: bool,
    notes: list[str] | None = None,
    vault: VaultInfo | None = None,
) -> ChangePlan[LockRow]:
    """The unlock's writes: restore each grant the lock removed, then re-enable each environment still offline.

    vault is the policy's vault: when its network keeps the service out, restoring access cannot unlock anything.
    """
    plan = ChangePlan[LockRow]("unlock", change_id, requested_by, notes=list(notes or []))
    plan.findings += check_vault_network(vault)
    if policy is None:
        plan.findings.append(
            Finding(
                "POLICY_NOT_FOUND",
                "blocking",
                policy_id,
                f"Enterprise policy {policy_id} does not exist or cannot be read.",
                "Check the policy id and that the Azure identity may read it.",
            )
        )
        return plan
    for grant in foreign_grants(grants, policy):
        plan.findings.append(
            Finding(
                "GRANT_FOREIGN_IDENTITY",
                "blocking",
                grant.target,
                f"Refusing to restore access for another identity than the policy's ({policy.principal_id}): "
                f"{grant.describe()}.",
                "Restore only the policy identity's own access; leave other grants out.",
            )
        )
    for grant, there in zip(grants, present, strict=True):
        plan.add(restore_write(grant, present=there))
    by_id = {e.id.lower(): e for e in envs}
    for env_id in dict.fromkeys(targets):
        env = by_id.get(env_id.lower())
        if env is None:
            plan.findings.append(
                Finding(
                    "ENV_NOT_FOUND",
                    "blocking" if explicit else "warning",
                    env_id,
                    f"Environment {env_id} was not found"
                    + (
                        "."
                        if explicit
                        else "; it may have been deleted after its deadline, so it is skipped."
                    ),
                    "Check the environment id." if explicit else "Nothing to do for it.",
                )
            )
            continue
        offline = (env.runtime_state or "").lower() == "disabled"
        plan.rows.append(
            LockRow(
                env.id,
                name=env.display_name or "",
                geo=env.location or "",
                sku=env.sku or "",
                runtime_before=env.runtime_state or "",
            )
        )
        plan.add(PlannedWrite("powerplatform", ENABLE_ACTION, env.id, env.display_name, in_place=not offline))
    return plan


def verified_online(
    rows: list[LockRow], envs: Sequence[EnvironmentInfo], policy: PolicyInfo
) -> list[LockRow]:
    """Each re-enable row checked against the environments read back: Enabled and still on a customer key.

    That is this policy, or (when the lock disabled a shared key) another policy using the same key.
    """
    current = {e.id.lower(): e for e in envs}
    out = []
    for row in rows:
        env = current.get(row.environment_id.lower())
        problems = []
        if env is None:
            problems.append("not found")
        else:
            if (env.runtime_state or "").lower() != "enabled":
                problems.append(f"runtime is {env.runtime_state}")
            if not (
                env.uses_policy(policy.system_id) or (env.cmk and (env.cmk.status or "").lower() == "linked")
            ):
                problems.append(f"no longer linked to {policy.name} or any customer-managed key policy")
        if problems and row.status not in ("failed", ADMIN_CENTER):
            row = replace(row, status="failed", error="verification: " + "; ".join(problems))
        linked_policy = (env.cmk.policy_arm_id or "").rsplit("/", 1)[-1] if env and env.cmk else ""
        out.append(
            replace(
                row,
                runtime_after=(env.runtime_state or "") if env else "missing",
                policy=row.policy or linked_policy,
            )
        )
    return out
