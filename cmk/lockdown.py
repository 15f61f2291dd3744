"""Decommission lock and unlock: the blast radius, and the key-access grants a lock removes and unlock restores."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cmk.models import EnvironmentInfo, KeyInfo, PolicyInfo, RoleAssignmentInfo, VaultInfo
from cmk.resource_ids import parse_vault_id, scope_covers
from cmk.roles import KEY_WRAP_ROLES

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


def linked_to(env: EnvironmentInfo, policy: PolicyInfo) -> bool:
    """Whether the environment uses (or is being moved onto) the policy's key."""
    if env.cmk is None or not policy.system_id:
        return False
    return (env.cmk.system_id or "").lower() == policy.system_id.lower()


def blast_radius(
    envs: list[EnvironmentInfo], policy: PolicyInfo, locked_at: datetime, policy_name: str = ""
) -> list[dict[str, Any]]:
    """One row per environment that goes offline when the policy loses key access, with its deletion deadline."""
    rows = []
    for env in envs:
        if not linked_to(env, policy):
            continue
        days, documented = deletion_days(env.sku)
        rows.append(
            {
                "environment_id": env.id,
                "name": env.display_name,
                "geo": env.location,
                "sku": env.sku or "",
                "policy": policy_name or policy.name,
                "runtime_before": env.runtime_state or "",
                "link_status": env.cmk.status if env.cmk else "",
                "deleted_after_days": days,
                "deletion_deadline": (locked_at + timedelta(days=days)).isoformat(timespec="minutes"),
                "deadline_documented": documented,
            }
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


def restore_targets(
    blast: list[dict[str, Any]], envs: list[EnvironmentInfo], policy: PolicyInfo
) -> list[str]:
    """Environments to re-enable: those the lock took offline (or, unknown, every one linked to the policy)."""
    if blast:
        return [row["environment_id"] for row in blast]
    return [e.id for e in envs if linked_to(e, policy)]
