"""Access drift: the key-access grants the journal says we left in place, compared with what exists now."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cmk.domain.models import RoleAssignmentInfo, VaultInfo

GrantKind = Literal["access_policy", "role_assignment"]


@dataclass(frozen=True)
class ExpectedGrant:
    """The journal's last word on one grant: present (with these permissions or this role) or removed."""

    kind: GrantKind
    scope: str  # the vault id (access policy) or the role assignment's scope
    principal_id: str
    present: bool
    permissions: frozenset[str] = frozenset()  # access policy: key permissions, lower-case
    role: str = ""  # role assignment: role definition GUID, lower-case
    change_id: str = ""
    time: str = ""


@dataclass(frozen=True)
class Drift:
    """A difference between the journal's expectation and the current state."""

    grant: ExpectedGrant
    missing: bool  # True: expected but gone (or short of permissions); False: removed but back
    detail: str


def _role_guid(role_definition_id: str) -> str:
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def _grant_from_entry(entry: Mapping[str, Any]) -> ExpectedGrant | None:
    """The grant one journal entry establishes or removes, or None when it is no grant."""
    if entry.get("outcome", "succeeded") != "succeeded":
        return None
    action = entry.get("action")
    after, before = entry.get("after") or {}, entry.get("before") or {}
    common = {"change_id": entry.get("change_id") or "", "time": entry.get("time") or ""}
    if action == "keyvault.access_policy.add" and after.get("object_id"):
        return ExpectedGrant(
            "access_policy",
            entry["target"],
            after["object_id"],
            True,
            permissions=frozenset(str(p).lower() for p in after.get("keys") or []),
            **common,
        )
    if action == "keyvault.access_policy.remove" and before.get("object_id"):
        return ExpectedGrant("access_policy", entry["target"], before["object_id"], False, **common)
    if action == "arm.role_assignment.create" and after.get("principal_id"):
        return ExpectedGrant(
            "role_assignment",
            entry["target"],
            after["principal_id"],
            True,
            role=str(after.get("role") or "").lower(),
            **common,
        )
    if action == "arm.role_assignment.delete" and before.get("principal_id") and before.get("scope"):
        return ExpectedGrant(
            "role_assignment",
            before["scope"],
            before["principal_id"],
            False,
            role=_role_guid(str(before.get("role_definition_id") or "")),
            **common,
        )
    return None


def expected_grants(entries: Iterable[Mapping[str, Any]]) -> list[ExpectedGrant]:
    """Replay the journal in order; the last entry per (kind, scope, principal, role) wins."""
    last: dict[tuple[str, str, str, str], ExpectedGrant] = {}
    for entry in entries:
        grant = _grant_from_entry(entry)
        if grant is not None:
            key = (grant.kind, grant.scope.lower(), grant.principal_id.lower(), grant.role)
            last[key] = grant
    return list(last.values())


def _access_policy_drift(grant: ExpectedGrant, vault: VaultInfo) -> Drift | None:
    entry = vault.access_policy_for(grant.principal_id)
    if grant.present:
        if entry is None:
            return Drift(grant, True, f"the access policy of {grant.principal_id} on {vault.name} is gone")
        short = sorted(p for p in grant.permissions if not entry.allows(p))
        if short:
            return Drift(
                grant, True, f"{grant.principal_id} lost key permission(s) {', '.join(short)} on {vault.name}"
            )
        return None
    if entry is not None and entry.key_permissions:
        return Drift(
            grant,
            False,
            f"{grant.principal_id} has key permissions {', '.join(sorted(entry.key_permissions))} on "
            f"{vault.name} again, although change {grant.change_id or '?'} removed them",
        )
    return None


def _role_drift(grant: ExpectedGrant, assignments: Sequence[RoleAssignmentInfo]) -> Drift | None:
    held = any(
        a.principal_id.lower() == grant.principal_id.lower()
        and a.role_guid == grant.role
        and a.scope.lower() == grant.scope.lower()
        for a in assignments
    )
    if grant.present and not held:
        return Drift(grant, True, f"the role {grant.role} of {grant.principal_id} at {grant.scope} is gone")
    if not grant.present and held:
        return Drift(
            grant,
            False,
            f"{grant.principal_id} holds role {grant.role} at {grant.scope} again, although change "
            f"{grant.change_id or '?'} removed it",
        )
    return None


def find_drift(
    grants: Iterable[ExpectedGrant],
    vaults: Mapping[str, VaultInfo],
    assignments: Mapping[str, Sequence[RoleAssignmentInfo]],
) -> list[Drift]:
    """Drift of every grant whose scope was read (vaults and assignments keyed by lower-case id/scope)."""
    out: list[Drift] = []
    for grant in grants:
        drift: Drift | None = None
        if grant.kind == "access_policy":
            vault = vaults.get(grant.scope.lower())
            if vault is not None and not vault.rbac:
                drift = _access_policy_drift(grant, vault)
        else:
            found = assignments.get(grant.scope.lower())
            if found is not None:
                drift = _role_drift(grant, found)
        if drift is not None:
            out.append(drift)
    return out
