"""Why an old key version or an old policy may not be retired yet (safety invariant 2), and the retire plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmk.domain.grace import describe_left, grace_left
from cmk.domain.models import (
    EnvironmentInfo,
    KeyInfo,
    PolicyInfo,
    RoleAssignmentInfo,
    VaultInfo,
    environments_using,
)
from cmk.domain.resource_ids import same_id
from cmk.domain.roles import CRYPTO_SERVICE_ENCRYPTION_USER
from cmk.plans.change import ChangePlan, PlannedWrite
from cmk.plans.lockdown import access_policy_target
from cmk.preflight import Finding
from cmk.state.key_retirements import Retirement
from cmk.state.policy_retirements import PolicyRetirement

DISABLE_VERSION = "disable-key-version"
DELETE_POLICY = "delete-policy"
REMOVE_ACCESS_POLICY = "remove-access-policy"
DELETE_ROLE_ASSIGNMENT = "delete-role-assignment"


def grace_blocker(retire_after_at: datetime, now: datetime) -> str | None:
    """A reason when the grace period has not passed at `now`, else None."""
    left = grace_left(retire_after_at, now)
    if left.total_seconds() > 0:
        return (
            f"its grace period runs until {retire_after_at.isoformat(timespec='seconds')} "
            f"({describe_left(left)} left)"
        )
    return None


def key_version_blockers(
    version: str,
    retire_after_at: datetime,
    now: datetime,
    *,
    latest_version: str | None,
    pinning_policies: Sequence[str] = (),
) -> list[str]:
    """Why this key version cannot be disabled now; empty when it can."""
    reasons = []
    grace = grace_blocker(retire_after_at, now)
    if grace:
        reasons.append(grace)
    if latest_version is not None and latest_version.lower() == version.lower():
        reasons.append(
            "it is the key's current version: every policy that follows the key uses it, so disabling it "
            "would lock their environments"
        )
    if pinning_policies:
        reasons.append(f"enterprise policy {', '.join(sorted(pinning_policies))} pins this version")
    return reasons


def policy_blockers(
    entry: PolicyRetirement, now: datetime, envs: Sequence[EnvironmentInfo], *, limit: int = 5
) -> list[str]:
    """Why the old policy, its identity's key access and the transition grants cannot be removed now."""
    reasons = []
    grace = grace_blocker(entry.retire_after, now)
    if grace:
        reasons.append(grace)
    dependent = environments_using(envs, entry.system_id)
    if dependent:
        shown = ", ".join(
            f"{e.display_name} ({e.id}, {e.cmk.status if e.cmk else ''})" for e in dependent[:limit]
        )
        more = f" and {len(dependent) - limit} more" if len(dependent) > limit else ""
        reasons.append(f"{len(dependent)} environment(s) still depend on it: {shown}{more}")
    return reasons


def _low(*parts: str) -> tuple[str, ...]:
    return tuple((p or "").lower().rstrip("/") for p in parts)


@dataclass
class RetirementFacts:
    """What the retire flow reads before it decides: keys, policies, environments, vaults and their grants."""

    policies: list[PolicyInfo] = field(default_factory=list)
    vault_uris: dict[str, str] = field(default_factory=dict)  # vault id (lower) -> uri (lower), "" unreadable
    versions: dict[tuple[str, ...], KeyInfo | None] = field(default_factory=dict)  # (uri, key, version)
    latest: dict[tuple[str, ...], str | None] = field(default_factory=dict)  # (uri, key) -> latest version
    environments: list[EnvironmentInfo] = field(default_factory=list)
    vaults: dict[str, VaultInfo | None] = field(default_factory=dict)  # vault id (lower) -> vault, None gone
    role_assignments: dict[tuple[str, ...], list[RoleAssignmentInfo]] = field(default_factory=dict)

    def version(self, r: Retirement) -> KeyInfo | None:
        """The recorded key version as read (None: the key is gone)."""
        return self.versions.get(_low(r.vault_uri, r.key_name, r.version))

    def latest_version(self, r: Retirement) -> str | None:
        """The key's latest version as read."""
        return self.latest.get(_low(r.vault_uri, r.key_name))

    def assignments(self, vault_id: str, principal_id: str) -> list[RoleAssignmentInfo]:
        """The principal's role assignments on the vault as read."""
        return self.role_assignments.get(_low(vault_id, principal_id), [])


def _item(
    kind: str, label: str, until: datetime, status: str, reasons: list[str], source: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "item": label,
        "retire_after": until.isoformat(timespec="seconds"),
        "status": status,
        "reasons": "; ".join(reasons),
        "source": source,
    }


def assess(
    facts: RetirementFacts, keys: Sequence[Retirement], policies: Sequence[PolicyRetirement], now: datetime
) -> list[dict[str, Any]]:
    """Each recorded item with its status (ready, refused, already-retired) and the reasons."""
    items: list[dict[str, Any]] = []
    for r in keys:
        label = f"key {r.key_name} version {r.version}"
        version = facts.version(r)
        if version is None:
            items.append(
                _item("key-version", label, r.retire_after, "already-retired", ["the key is gone"], r)
            )
            continue
        if not version.enabled:
            items.append(
                _item("key-version", label, r.retire_after, "already-retired", ["already disabled"], r)
            )
            continue
        pinning = [
            p.name
            for p in facts.policies
            if (p.key_version or "").lower() == r.version.lower()
            and (p.key_name or "").lower() == r.key_name.lower()
            and facts.vault_uris.get((p.vault_id or "").lower(), "") == r.vault_uri.lower().rstrip("/")
        ]
        reasons = key_version_blockers(
            r.version, r.retire_after, now, latest_version=facts.latest_version(r), pinning_policies=pinning
        )
        items.append(
            _item("key-version", label, r.retire_after, "refused" if reasons else "ready", reasons, r)
        )
    for p in policies:
        label = f"policy {p.policy_id.rsplit('/', 1)[-1]}"
        reasons = policy_blockers(p, now, facts.environments)
        items.append(_item("policy", label, p.retire_after, "refused" if reasons else "ready", reasons, p))
    return items


def access_writes(facts: RetirementFacts, vault_id: str, principal_id: str) -> list[PlannedWrite]:
    """Removing a principal's key access on a vault: its access-policy entry, or its key role at vault scope."""
    vault = facts.vaults.get(vault_id.lower())
    if not principal_id or vault is None:
        return []
    if not vault.rbac:
        return [
            PlannedWrite(
                "arm",
                REMOVE_ACCESS_POLICY,
                access_policy_target(vault_id, principal_id),
                f"key access of `{principal_id}` on vault `{vault.name}`",
                in_place=vault.access_policy_for(principal_id) is None,
            )
        ]
    return [
        PlannedWrite(
            "arm", DELETE_ROLE_ASSIGNMENT, a.id, f"key role of `{principal_id}` on vault `{vault.name}`"
        )
        for a in facts.assignments(vault_id, principal_id)
        if a.role_guid == CRYPTO_SERVICE_ENCRYPTION_USER and same_id(a.scope, vault_id)
    ]


def item_writes(item: dict[str, Any], facts: RetirementFacts) -> list[PlannedWrite]:
    """The writes that retire one item: disable the version, or delete the policy and remove its key access."""
    source = item["source"]
    if isinstance(source, Retirement):
        target = f"{source.vault_uri.rstrip('/')}/keys/{source.key_name}/{source.version}"
        return [PlannedWrite("keyvault", DISABLE_VERSION, target, item["item"])]
    entry: PolicyRetirement = source
    writes = [PlannedWrite("arm", DELETE_POLICY, entry.policy_id, item["item"])]
    writes += access_writes(facts, entry.vault_id, entry.principal_id)
    if not same_id(entry.new_vault_id, entry.vault_id):
        # the transition grant the new policy got on the old vault
        writes += access_writes(facts, entry.vault_id, entry.new_principal_id)
    return writes


def plan_retirement(
    change_id: str, requested_by: str, items: list[dict[str, Any]], facts: RetirementFacts
) -> ChangePlan:
    """The retirement's writes, for the items that are ready; the refused ones are warnings with their reasons."""
    plan = ChangePlan("retire", change_id, requested_by, rows=items)
    for item in items:
        if item["status"] == "ready":
            for write in item_writes(item, facts):
                plan.add(write)
        elif item["status"] == "refused":
            plan.findings.append(
                Finding(
                    "RETIREMENT_REFUSED",
                    "warning",
                    item["item"],
                    f"{item['item']} is not retired: {item['reasons']}.",
                    "Run retire again once nothing depends on it and its grace period has passed.",
                )
            )
    return plan
