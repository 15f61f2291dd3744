"""Re-grant: put back key-access grants the journal recorded and that are gone, exactly as they were recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cmk.domain.models import RoleAssignmentInfo, VaultInfo
from cmk.domain.resource_ids import parse_vault_id
from cmk.domain.roles import role_guid
from cmk.plans.change import ChangePlan, PlannedWrite
from cmk.plans.lockdown import access_policy_target, canonical_key_permissions
from cmk.preflight import Finding

GrantKind = Literal["access_policy", "role_assignment"]
REGRANT_ACCESS_POLICY = "regrant-access-policy"
REGRANT_ROLE = "regrant-role-assignment"


@dataclass(frozen=True)
class RecordedGrant:
    """A grant as the journal recorded it: an access-policy entry on a vault, or a role at a scope."""

    kind: GrantKind
    scope: str  # the vault id (access policy) or the role assignment's scope
    principal_id: str
    permissions: tuple[str, ...] = ()  # access policy: key permissions
    role: str = ""  # role assignment: role definition GUID
    recorded_by: str = ""  # the change that made it

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordedGrant:
        """A grant from its dict form; ValueError says what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"A grant must be an object with a 'kind'; got {data!r}.")
        kind = data.get("kind")
        scope, principal = str(data.get("scope") or ""), str(data.get("principal_id") or "")
        if kind not in ("access_policy", "role_assignment"):
            raise ValueError(f"Grant kind {kind!r} is not access_policy or role_assignment.")
        if not scope or not principal:
            raise ValueError("A grant needs scope and principal_id.")
        permissions = canonical_key_permissions([str(p) for p in data.get("permissions") or ()])
        role = str(data.get("role") or "")
        if kind == "access_policy":
            parse_vault_id(scope)
            if not permissions:
                raise ValueError(f"The access-policy grant of {principal} names no key permissions.")
        elif not role_guid(role):
            raise ValueError(f"The role grant of {principal} needs a role definition GUID; got {role!r}.")
        return cls(kind, scope, principal, permissions, role.lower(), str(data.get("recorded_by") or ""))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "kind": self.kind,
            "scope": self.scope,
            "principal_id": self.principal_id,
            "permissions": list(self.permissions),
            "role": self.role,
            "recorded_by": self.recorded_by,
        }

    @property
    def action(self) -> str:
        """The plan's name for the write that puts this grant back."""
        return REGRANT_ACCESS_POLICY if self.kind == "access_policy" else REGRANT_ROLE

    @property
    def target(self) -> str:
        """What that write touches."""
        if self.kind == "access_policy":
            return access_policy_target(self.scope, self.principal_id)
        return f"{self.scope}:{self.role}:{self.principal_id}"

    def describe(self) -> str:
        """One line saying what this access is."""
        if self.kind == "access_policy":
            return (
                f"access-policy entry of `{self.principal_id}` on vault `{self.scope.rsplit('/', 1)[-1]}` "
                f"(key permissions {', '.join(self.permissions)})"
            )
        return f"role `{self.role}` of `{self.principal_id}` at scope `{self.scope}`"


def grant_in_place(
    grant: RecordedGrant, vault: VaultInfo | None, assignments: Sequence[RoleAssignmentInfo]
) -> bool:
    """Whether the grant exists now with everything recorded (so putting it back writes nothing)."""
    if grant.kind == "access_policy":
        entry = vault.access_policy_for(grant.principal_id) if vault else None
        return entry is not None and all(entry.allows(p) for p in grant.permissions)
    return any(
        a.principal_id.lower() == grant.principal_id.lower()
        and a.role_guid == grant.role
        and a.scope.lower() == grant.scope.lower()
        for a in assignments
    )


def plan_regrant(
    change_id: str,
    requested_by: str,
    grants: Sequence[RecordedGrant],
    in_place: Sequence[bool],
    vaults: Mapping[str, VaultInfo | None],
) -> ChangePlan[dict[str, Any]]:
    """One write per grant (in place when it exists); a vault that is gone or of the other mode blocks."""
    plan: ChangePlan[dict[str, Any]] = ChangePlan("regrant", change_id, requested_by)
    for grant, present in zip(grants, in_place, strict=True):
        if grant.kind == "access_policy":
            vault = vaults.get(grant.scope.lower())
            if vault is None:
                plan.findings.append(
                    Finding(
                        "VAULT_NOT_FOUND",
                        "blocking",
                        grant.scope,
                        f"Vault {grant.scope} cannot be read, so the access-policy grant of "
                        f"{grant.principal_id} cannot be put back.",
                        "Check the vault exists and the Azure identity can read it.",
                    )
                )
                continue
            if vault.rbac:
                plan.findings.append(
                    Finding(
                        "VAULT_USES_RBAC",
                        "blocking",
                        grant.scope,
                        f"Vault {vault.name} uses Azure RBAC now, so an access policy would have no effect.",
                        "Grant the principal a key role on the vault by hand (the change that recorded the "
                        "grant no longer fits the vault).",
                    )
                )
                continue
        service = "keyvault" if grant.kind == "access_policy" else "arm"
        plan.add(PlannedWrite(service, grant.action, grant.target, grant.describe(), in_place=present))
        plan.rows.append({**grant.to_dict(), "in_place_before": present})
    return plan
