"""Self-healing requests: which inventory findings a change flow can repair, with that flow's prefilled parameters.

Nothing here writes or approves: a request names the deployment to run and its parameters; the run it starts
pauses for approval like a manual one. Parameters hold ids only (never a secret).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cmk.domain.models import PolicyInfo
from cmk.domain.roles import KEY_WRAP_ROLES
from cmk.inventory.drift import find_drift
from cmk.inventory.risks import key_risks
from cmk.inventory.snapshot import TenantSnapshot, is_locked, link_failed, linked_policy, policy_index
from cmk.plans.lockdown import Grant, canonical_key_permissions

# The finding codes self-healing knows (the inventory's risk codes), the deployment each one runs, and the
# parameters that deployment may receive from a finding (anything else in an event is refused).
DEPLOYMENTS: dict[str, str] = {
    "link-failed": "migrate_byok/migrate-byok",
    "access-missing": "regrant/regrant-access",
    "key-expiring": "rotate/rotate-key",
    "environment-locked": "unlock/unlock-policy",
}
ALLOWED_PARAMETERS: dict[str, frozenset[str]] = {
    "link-failed": frozenset({"policy_id", "environments"}),
    "access-missing": frozenset({"grants"}),
    "key-expiring": frozenset({"policy_id", "mode"}),
    "environment-locked": frozenset({"policy_id", "grants", "environments"}),
}
CODES: tuple[str, ...] = tuple(DEPLOYMENTS)
REQUESTER = "cmk-self-healing"  # requested_by of every remediation run: no approver can be it
SETTING = "CMK_REMEDIATE"
EVENT = "cmk.finding.detected"
REFUSED = "refused"


@dataclass(frozen=True)
class Remediation:
    """One finding a change flow can repair: the finding, the deployment and its prefilled parameters."""

    code: str
    target: str
    summary: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def deployment(self) -> str:
        """The deployment ('flow/deployment') that repairs this finding."""
        return DEPLOYMENTS[self.code]

    @property
    def key(self) -> str:
        """A stable short id of the finding: the same finding gets the same key in every inventory."""
        return finding_key(self.code, self.target)

    @property
    def resource_id(self) -> str:
        """The Prefect event resource id of this finding."""
        return f"cmk.finding.{self.code}.{self.key}"

    def change_id(self, taken_at: datetime) -> str:
        """The change id of the remediation run an inventory taken at `taken_at` asks for."""
        return remediation_change_id(self.code, self.key, taken_at)

    def payload(self, taken_at: datetime) -> dict[str, Any]:
        """The event payload: everything the dispatcher needs (ids only)."""
        return {
            "code": self.code,
            "target": self.target,
            "key": self.key,
            "summary": self.summary,
            "deployment": self.deployment,
            "change_id": self.change_id(taken_at),
            "parameters": self.parameters,
        }


def finding_key(code: str, target: str) -> str:
    """12 hex digits from the code and the (case-insensitive) target."""
    return hashlib.sha256(f"{code}|{target.lower()}".encode()).hexdigest()[:12]


def remediation_change_id(code: str, key: str, taken_at: datetime) -> str:
    """REM-<code>-<key>-<inventory time>: one change per finding per inventory."""
    return f"REM-{code}-{key}-{taken_at:%Y%m%dT%H%M%S}"


def opted_in(value: str | None) -> frozenset[str]:
    """The finding codes switched on by the setting (comma-separated codes, 'all', or empty = none)."""
    words = {w.strip().lower() for w in (value or "").split(",") if w.strip()}
    if "all" in words:
        return frozenset(CODES)
    unknown = words - set(CODES)
    if unknown:
        raise ValueError(
            f"{SETTING} names unknown finding(s) {', '.join(sorted(unknown))}; known: {', '.join(CODES)}, all."
        )
    return frozenset(words)


def check_request(code: str, parameters: Mapping[str, Any]) -> str:
    """Why a dispatch request is refused ('' when it may run): unknown code or parameters outside its set."""
    if code not in DEPLOYMENTS:
        return f"finding {code!r} has no remediation"
    extra = set(parameters) - ALLOWED_PARAMETERS[code]
    if extra:
        return f"parameters {', '.join(sorted(extra))} are not prefilled for {code}"
    return ""


def link_failed_remediations(snapshot: TenantSnapshot) -> list[Remediation]:
    """A failed link to a policy that is Healthy now: link that environment to it again."""
    index = policy_index(snapshot.policies)
    out = []
    for env in snapshot.environments:
        policy = linked_policy(env, index) if link_failed(env) else None
        if policy is not None and _healthy(policy):
            out.append(
                Remediation(
                    "link-failed",
                    env.id,
                    f"Link {env.display_name} to {policy.name} again",
                    {"policy_id": policy.id, "environments": [env.id]},
                )
            )
    return out


def access_missing_remediations(snapshot: TenantSnapshot) -> list[Remediation]:
    """A grant our journal recorded and that is gone now: grant it again, exactly as recorded."""
    out = []
    for drift in find_drift(snapshot.expected_grants, snapshot.vaults, snapshot.role_assignments):
        if not drift.missing:
            continue  # an unexpected grant is never removed by itself
        g = drift.grant
        grant = {
            "kind": g.kind,
            "scope": g.scope,
            "principal_id": g.principal_id,
            "permissions": sorted(g.permissions),
            "role": g.role,
            "recorded_by": g.change_id,
        }
        out.append(
            Remediation(
                "access-missing",
                f"{g.kind}:{g.scope}:{g.principal_id}:{g.role}",
                f"Grant again: {drift.detail}",
                {"grants": [grant]},
            )
        )
    return out


def key_expiring_remediations(snapshot: TenantSnapshot, now: datetime, margin_days: int) -> list[Remediation]:
    """A policy whose key version expires within the margin: rotate to a new key version (no downtime)."""
    out = []
    for policy in snapshot.policies:
        risks = key_risks(policy, snapshot.key_of(policy), (), now, timedelta(days=margin_days))
        if any(r.code == "key-expiring" for r in risks):
            out.append(
                Remediation(
                    "key-expiring",
                    policy.id,
                    f"Rotate the key of {policy.name} to a new version",
                    {"policy_id": policy.id, "mode": "key-version"},
                )
            )
    return out


def locked_remediations(snapshot: TenantSnapshot) -> list[Remediation]:
    """Locked environments of a policy that is Healthy again (its key access is back): re-enable them."""
    index = policy_index(snapshot.policies)
    locked: dict[str, tuple[PolicyInfo, list[str]]] = {}
    for env in snapshot.environments:
        policy = linked_policy(env, index) if is_locked(env) else None
        if policy is not None and _healthy(policy):
            locked.setdefault(policy.id.lower(), (policy, []))[1].append(env.id)
    out = []
    for policy, env_ids in locked.values():
        grant = present_key_access(snapshot, policy)
        if grant is None:
            continue
        out.append(
            Remediation(
                "environment-locked",
                policy.id,
                f"Re-enable {len(env_ids)} locked environment(s) of {policy.name}, whose key access is back",
                {"policy_id": policy.id, "grants": [grant.to_dict()], "environments": sorted(env_ids)},
            )
        )
    return out


def present_key_access(snapshot: TenantSnapshot, policy: PolicyInfo) -> Grant | None:
    """The key access the policy identity holds now (unlock finds it in place and writes nothing for it)."""
    vault = snapshot.vaults.get((policy.vault_id or "").lower())
    if vault is None or not policy.principal_id:
        return None
    if not vault.rbac:
        entry = vault.access_policy_for(policy.principal_id)
        if entry is None or not all(entry.allows(p) for p in ("get", "wrapkey", "unwrapkey")):
            return None
        return Grant(
            "access_policy",
            vault.id,
            policy.principal_id,
            key_permissions=canonical_key_permissions(entry.key_permissions),
        )
    for a in snapshot.role_assignments.get(vault.id.lower(), ()):
        if a.principal_id.lower() == policy.principal_id.lower() and a.role_guid in KEY_WRAP_ROLES:
            return Grant(
                "role_assignment",
                vault.id,
                policy.principal_id,
                scope=a.scope,
                role_definition_id=a.role_definition_id,
                assignment_id=a.id,
            )
    return None


def remediations(
    snapshot: TenantSnapshot, now: datetime, margin_days: int, codes: Sequence[str] = CODES
) -> list[Remediation]:
    """Every repairable finding of the snapshot whose code is in `codes`."""
    found = (
        link_failed_remediations(snapshot)
        + access_missing_remediations(snapshot)
        + key_expiring_remediations(snapshot, now, margin_days)
        + locked_remediations(snapshot)
    )
    return [r for r in found if r.code in codes]


def _healthy(policy: PolicyInfo) -> bool:
    return (policy.health or "").lower() == "healthy"
