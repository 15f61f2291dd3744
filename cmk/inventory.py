"""The tenant inventory: one row per environment and the risk findings, computed from models read in bulk."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from cmk.access_drift import ExpectedGrant, find_drift
from cmk.models import EnvironmentInfo, KeyInfo, PolicyInfo, RoleAssignmentInfo, VaultInfo
from cmk.policy_retirements import PolicyRetirement
from cmk.preflight import Finding, check_key, check_vault
from cmk.preflight.environment import DISALLOWED_SKUS, normalise_geo
from cmk.retirements import Retirement
from cmk.rotation_policy import RotationPolicyInfo

RiskSeverity = Literal["high", "medium", "low"]
SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2}
# Runtime reasons that disable an environment without a key problem (simulator names; see docs/simulator.md).
NOT_A_LOCK = frozenset({"lifecycleoperationinprogress", "admindisabled"})

ROW_COLUMNS = [
    "environment_id",
    "name",
    "geo",
    "sku",
    "managed",
    "runtime_state",
    "runtime_reason",
    "key_managed_by",
    "key_source",
    "link_status",
    "policy",
    "policy_health",
    "vault",
    "key",
    "key_version",
    "key_expires_on",
    "risks",
]
RISK_COLUMNS = ["severity", "code", "target", "message", "remediation", "environments"]


@dataclass(frozen=True)
class Risk:
    """One risk finding: a stable code, severity, what it is about, what to do, which environments it hits."""

    code: str
    severity: RiskSeverity
    target: str
    message: str
    remediation: str
    environments: tuple[str, ...] = ()

    def to_row(self) -> dict[str, Any]:
        """A flat row for tables and CSV."""
        data = asdict(self)
        data["environments"] = len(self.environments)
        return data


@dataclass(frozen=True)
class KeyState:
    """A key as read: its versions (oldest first) and its rotation policy, or why it could not be read."""

    vault_uri: str
    name: str
    versions: tuple[KeyInfo, ...] = ()
    rotation: RotationPolicyInfo | None = None
    error: str | None = None

    def version(self, version: str | None) -> KeyInfo | None:
        """A version by id, or the latest when version is None."""
        if not self.versions:
            return None
        if not version:
            return self.versions[-1]
        return next((k for k in self.versions if k.version.lower() == version.lower()), None)


@dataclass
class TenantSnapshot:
    """Everything the inventory reads, keyed by lower-case ids: environments, policies, vaults, keys, grants."""

    environments: Sequence[EnvironmentInfo]
    policies: Sequence[PolicyInfo]
    vaults: Mapping[str, VaultInfo] = field(default_factory=dict)
    keys: Mapping[tuple[str, str], KeyState] = field(default_factory=dict)
    role_assignments: Mapping[str, Sequence[RoleAssignmentInfo]] = field(default_factory=dict)
    expected_grants: Sequence[ExpectedGrant] = ()
    retirements: Sequence[Retirement] = ()
    policy_retirements: Sequence[PolicyRetirement] = ()
    read_errors: Mapping[str, str] = field(default_factory=dict)  # target -> why it could not be read

    def key_of(self, policy: PolicyInfo) -> KeyState | None:
        """The key state of a policy's key, when its vault was read."""
        vault = self.vaults.get((policy.vault_id or "").lower())
        if vault is None or not policy.key_name:
            return None
        return self.keys.get((vault.uri.lower(), policy.key_name.lower()))


@dataclass
class InventoryReport:
    """The inventory's result: rows, risks and when it was taken."""

    taken_at: datetime
    rows: list[dict[str, Any]]
    risks: list[Risk]

    def counts(self) -> dict[str, int]:
        """How many risks of each severity."""
        return {s: sum(1 for r in self.risks if r.severity == s) for s in SEVERITY_ORDER}

    def worst(self) -> RiskSeverity | None:
        """The most severe risk found, or None."""
        return min((r.severity for r in self.risks), key=SEVERITY_ORDER.__getitem__, default=None)


def policy_index(policies: Iterable[PolicyInfo]) -> dict[str, PolicyInfo]:
    """Policies by lower-case ARM id and by lower-case systemId."""
    index: dict[str, PolicyInfo] = {}
    for p in policies:
        index[p.id.lower()] = p
        if p.system_id:
            index[p.system_id.lower()] = p
    return index


def linked_policy(env: EnvironmentInfo, index: Mapping[str, PolicyInfo]) -> PolicyInfo | None:
    """The policy an environment is linked to, by ARM id or systemId."""
    if env.cmk is None:
        return None
    for ref in (env.cmk.policy_arm_id, env.cmk.system_id):
        if ref and ref.lower() in index:
            return index[ref.lower()]
    return None


def is_locked(env: EnvironmentInfo) -> bool:
    """Disabled while linked to a customer key, and not for an operation or by an administrator."""
    return (
        env.cmk is not None
        and (env.runtime_state or "").lower() == "disabled"
        and not env.operation_running
        and (env.runtime_reason or "").lower() not in NOT_A_LOCK
    )


def link_failed(env: EnvironmentInfo) -> bool:
    """Whether the environment's last link attempt failed."""
    return bool(env.cmk and (env.cmk.status or "").lower() in {"failed", "linkfailed"})


# Preflight rules that are also inventory risks: finding code -> (risk code, severity). The rule, its message and
# its remediation live once, in cmk/preflight/; the inventory only names and grades them.
VAULT_RISKS: dict[str, tuple[str, RiskSeverity]] = {
    "VAULT_SOFT_DELETE_OFF": ("vault-soft-delete-off", "high"),
    "VAULT_PURGE_PROTECTION_OFF": ("vault-purge-protection-off", "high"),
}
KEY_RISKS: dict[str, tuple[str, RiskSeverity]] = {
    "KEY_DISABLED": ("key-disabled", "high"),
    "KEY_EXPIRED": ("key-expired", "high"),
    "KEY_EXPIRING_SOON": ("key-expiring", "high"),
    "KEY_NOT_ACTIVE": ("key-not-active", "high"),
    "KEY_TYPE_UNSUPPORTED": ("key-unsupported", "high"),
    "KEY_SIZE_UNSUPPORTED": ("key-unsupported", "high"),
}


def risks_from_findings(
    findings: Iterable[Finding], codes: Mapping[str, tuple[str, RiskSeverity]], envs: tuple[str, ...]
) -> list[Risk]:
    """The inventory risks of preflight findings (findings without a risk code are not inventory risks)."""
    out = []
    for f in findings:
        if f.code in codes:
            code, severity = codes[f.code]
            out.append(Risk(code, severity, f.target, f.message, f.remediation, envs))
    return out


def _fmt(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def key_risks(
    policy: PolicyInfo, state: KeyState | None, envs: tuple[str, ...], now: datetime, margin: timedelta
) -> list[Risk]:
    """Expiry, expiry policy and rotation policy of the key version a policy uses."""
    if state is None:
        return []
    target = f"{state.vault_uri}/keys/{state.name}"
    if state.error:
        return [
            Risk(
                "key-unreadable",
                "high",
                target,
                f"The key of policy {policy.name} could not be read: {state.error}",
                "Give the Azure administrator identity get/list on keys (and getrotationpolicy), or fix the key.",
                envs,
            )
        ]
    key = state.version(policy.key_version)
    if key is None:
        return [
            Risk(
                "key-missing",
                "high",
                target,
                f"Policy {policy.name} uses key version {policy.key_version or '(latest)'}, which does not exist.",
                "Recover the key (soft delete) or point the policy at an existing key version.",
                envs,
            )
        ]
    risks = risks_from_findings(check_key(key, now, margin.days), KEY_RISKS, envs)
    rotation = state.rotation
    if key.expires_on is None and (rotation is None or not rotation.expiry_time):
        risks.append(
            Risk(
                "key-no-expiry-policy",
                "medium",
                target,
                f"Key {state.name} of policy {policy.name} has no expiry date and no expiry in its rotation policy.",
                "Set an expiryTime in the key's rotation policy so versions cannot live forever unnoticed.",
                envs,
            )
        )
    if rotation is not None and not rotation.rotates:
        risks.append(
            Risk(
                "key-no-rotation-policy",
                "medium",
                target,
                f"Key {state.name} of policy {policy.name} has no automatic Rotate action.",
                "Schedule the rotate deployment, or add a Rotate lifetime action to the key's rotation policy.",
                envs,
            )
        )
    return risks


def vault_risks(vault: VaultInfo, envs: tuple[str, ...]) -> list[Risk]:
    """Soft delete and purge protection, which CMK requires: the preflight's vault rules."""
    return risks_from_findings(check_vault(vault, vault.id), VAULT_RISKS, envs)


def retirement_risks(snapshot: TenantSnapshot, now: datetime) -> list[Risk]:
    """Key versions past their retire-after date: still enabled (can go), or still in use by a policy (cannot)."""
    in_use: dict[tuple[str, str, str], PolicyInfo] = {}
    for policy in snapshot.policies:
        state = snapshot.key_of(policy)
        key = state.version(policy.key_version) if state else None
        if state is not None and key is not None:
            in_use[(state.vault_uri.lower(), state.name.lower(), key.version.lower())] = policy
    risks = []
    for r in snapshot.retirements:
        if r.retire_after > now:
            continue
        ident = (r.vault_uri.lower(), r.key_name.lower(), r.version.lower())
        target = f"{r.vault_uri}/keys/{r.key_name}/{r.version}"
        if ident in in_use:
            risks.append(
                Risk(
                    "key-version-retire-blocked",
                    "high",
                    target,
                    f"Key version {r.version} passed its retire-after date {_fmt(r.retire_after)} but policy "
                    f"{in_use[ident].name} still uses it.",
                    "Finish the rotation (move the policy to the new version) before retiring the old one.",
                )
            )
            continue
        state = snapshot.keys.get((r.vault_uri.lower(), r.key_name.lower()))
        version = state.version(r.version) if state else None
        if version is not None and version.enabled:
            risks.append(
                Risk(
                    "key-version-past-retire-after",
                    "medium",
                    target,
                    f"Key version {r.version} is still enabled after its retire-after date "
                    f"{_fmt(r.retire_after)} (change {r.change_id or '?'}).",
                    "Disable the old version with the retire flow (it verifies nothing depends on it).",
                )
            )
    return risks


def policy_retirement_risks(
    snapshot: TenantSnapshot, linked: Mapping[str, list[str]], now: datetime
) -> list[Risk]:
    """Old policies replaced by a swap and past their retire-after date: still in use (cannot go) or idle."""
    existing = {p.id.lower(): p for p in snapshot.policies}
    risks = []
    for entry in snapshot.policy_retirements:
        policy = existing.get(entry.policy_id.lower())
        if entry.retired or entry.retire_after > now or policy is None:
            continue
        envs = tuple(linked.get(policy.id.lower(), []))
        if envs:
            risks.append(
                Risk(
                    "policy-retire-blocked",
                    "high",
                    policy.id,
                    f"Old policy {policy.name} passed its retire-after date {_fmt(entry.retire_after)} (change "
                    f"{entry.change_id}) but {len(envs)} environment(s) are still linked to it.",
                    "Move them to the new policy (re-run the rotation with its change id), then retire the old one.",
                    envs,
                )
            )
        else:
            risks.append(
                Risk(
                    "policy-past-retire-after",
                    "medium",
                    policy.id,
                    f"Old policy {policy.name} is unused and past its retire-after date "
                    f"{_fmt(entry.retire_after)} (change {entry.change_id}); its key and access are still kept.",
                    "Run the retire flow to remove the old policy, its key access and its key.",
                )
            )
    return risks


def environment_risks(env: EnvironmentInfo, policy: PolicyInfo | None) -> list[Risk]:
    """Locked, failed link, legacy BYOK, or linked to a policy that no longer exists."""
    envs = (env.id,)
    target = f"{env.display_name} ({env.id})"
    risks = []
    if is_locked(env):
        risks.append(
            Risk(
                "environment-locked",
                "high",
                target,
                f"{env.display_name} is disabled ({env.runtime_reason or 'no reason given'}): its key is "
                "not reachable.",
                "Restore the policy's access to its key, then run the unlock flow to re-enable it.",
                envs,
            )
        )
    if link_failed(env):
        risks.append(
            Risk(
                "link-failed",
                "high",
                target,
                f"The last link of {env.display_name} to a customer-managed key failed.",
                "Read the onboarding summary for the reason, fix it and re-run the change with the same id.",
                envs,
            )
        )
    if env.byok:
        risks.append(
            Risk(
                "byok-environment",
                "medium",
                target,
                f"{env.display_name} still uses a legacy BYOK key.",
                "Move it to a customer-managed key with the migrate_byok flow.",
                envs,
            )
        )
    if env.cmk is not None and policy is None and not link_failed(env):
        risks.append(
            Risk(
                "policy-missing",
                "high",
                target,
                f"{env.display_name} is linked to {env.cmk.policy_arm_id or env.cmk.system_id}, which the "
                "Azure connection cannot see.",
                "Check the policy exists in the connection's subscription, or grant the identity Reader on it.",
                envs,
            )
        )
    return risks


def geo_risks(environments: Sequence[EnvironmentInfo], policies: Sequence[PolicyInfo]) -> list[Risk]:
    """Geos with managed, CMK-capable environments but no Encryption policy located there."""
    covered = {normalise_geo(p.location) for p in policies}
    by_geo: dict[str, list[str]] = {}
    for env in environments:
        if env.managed and (env.sku or "").lower() not in DISALLOWED_SKUS:
            by_geo.setdefault(normalise_geo(env.location), []).append(env.id)
    return [
        Risk(
            "geo-without-policy",
            "low",
            geo,
            f"{len(ids)} managed environment(s) in geo {geo} and no Encryption enterprise policy there.",
            f"Onboard the geo with the onboard flow (location {geo}) if these environments need a customer key.",
            tuple(ids),
        )
        for geo, ids in sorted(by_geo.items())
        if geo not in covered
    ]


def drift_risks(snapshot: TenantSnapshot) -> list[Risk]:
    """Grants that changed since the journal recorded them."""
    risks = []
    for drift in find_drift(snapshot.expected_grants, snapshot.vaults, snapshot.role_assignments):
        recorded = f" (recorded by change {drift.grant.change_id})" if drift.grant.change_id else ""
        if drift.missing:
            risks.append(
                Risk(
                    "access-missing",
                    "high",
                    drift.grant.scope,
                    f"{drift.detail}{recorded}.",
                    "Restore the grant (re-run the change that made it) unless its removal was intended; "
                    "linked environments lock without it.",
                )
            )
        else:
            risks.append(
                Risk(
                    "access-unexpected",
                    "medium",
                    drift.grant.scope,
                    f"{drift.detail}{recorded}.",
                    "Find out who granted it (activity log) and remove it if it is not intended.",
                )
            )
    return risks


def assess(snapshot: TenantSnapshot, now: datetime, margin_days: int = 30) -> InventoryReport:
    """The inventory rows and every risk, highest severity first."""
    index = policy_index(snapshot.policies)
    margin = timedelta(days=margin_days)
    linked: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    risks: list[Risk] = []
    env_codes: dict[str, list[str]] = {}
    for env in snapshot.environments:
        policy = linked_policy(env, index)
        if policy is not None:
            linked.setdefault(policy.id.lower(), []).append(env.id)
        found = environment_risks(env, policy)
        risks += found
        env_codes[env.id] = [r.code for r in found]
    for policy in snapshot.policies:
        envs = tuple(linked.get(policy.id.lower(), []))
        if policy.health and policy.health.lower() != "healthy":
            risks.append(
                Risk(
                    "policy-unhealthy",
                    "high",
                    policy.id,
                    f"Policy {policy.name} reports health {policy.health}: its identity cannot use its key.",
                    "Restore the identity's Get/WrapKey/UnwrapKey on the key (or the RBAC role), then run unlock.",
                    envs,
                )
            )
        vault = snapshot.vaults.get((policy.vault_id or "").lower())
        if vault is not None:
            risks += vault_risks(vault, envs)
        risks += key_risks(policy, snapshot.key_of(policy), envs, now, margin)
    risks += drift_risks(snapshot)
    risks += retirement_risks(snapshot, now)
    risks += policy_retirement_risks(snapshot, linked, now)
    risks += geo_risks(snapshot.environments, snapshot.policies)
    risks += [
        Risk(
            "read-failed",
            "high",
            target,
            f"Could not read {target}: {why}",
            "Give the connection's identity read access, then run the inventory again.",
        )
        for target, why in snapshot.read_errors.items()
    ]
    # Deduplicate risks raised once per policy for a vault shared by several policies.
    unique: dict[tuple[str, str], Risk] = {}
    for risk in risks:
        key = (risk.code, risk.target)
        if key in unique:
            merged = tuple(dict.fromkeys(unique[key].environments + risk.environments))
            unique[key] = Risk(risk.code, risk.severity, risk.target, risk.message, risk.remediation, merged)
        else:
            unique[key] = risk
    risks = sorted(unique.values(), key=lambda r: (SEVERITY_ORDER[r.severity], r.code, r.target))
    for risk in risks:
        for env_id in risk.environments:
            codes = env_codes.setdefault(env_id, [])
            if risk.code not in codes:
                codes.append(risk.code)
    for env in snapshot.environments:
        rows.append(environment_row(env, linked_policy(env, index), snapshot, env_codes.get(env.id, [])))
    return InventoryReport(taken_at=now, rows=rows, risks=risks)


def environment_row(
    env: EnvironmentInfo, policy: PolicyInfo | None, snapshot: TenantSnapshot, codes: list[str]
) -> dict[str, Any]:
    """One inventory row: the environment, its policy, the key version in use and its risk codes."""
    state = snapshot.key_of(policy) if policy else None
    key = state.version(policy.key_version) if state and policy else None
    vault = snapshot.vaults.get((policy.vault_id or "").lower()) if policy else None
    return {
        "environment_id": env.id,
        "name": env.display_name,
        "geo": env.location,
        "sku": env.sku or "",
        "managed": env.managed,
        "runtime_state": env.runtime_state or "",
        "runtime_reason": env.runtime_reason or "",
        "key_managed_by": env.key_managed_by or "",
        "key_source": "BYOK" if env.byok else ("CMK" if env.cmk and not link_failed(env) else "Microsoft"),
        "link_status": (env.cmk.status or "") if env.cmk else "",
        "policy": policy.name if policy else (env.cmk.policy_arm_id or "" if env.cmk else ""),
        "policy_health": (policy.health or "") if policy else "",
        "vault": vault.name if vault else "",
        "key": policy.key_name or "" if policy else "",
        "key_version": key.version if key else (policy.key_version or "" if policy else ""),
        "key_expires_on": _fmt(key.expires_on) if key else "",
        "risks": "; ".join(codes),
    }


def rows_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The environment rows as a frame with the standard columns."""
    frame = pd.DataFrame(list(rows), columns=ROW_COLUMNS)
    return frame.astype(object).where(frame.notna(), "")


def risks_frame(risks: Sequence[Risk]) -> pd.DataFrame:
    """The risks as a frame (environments as a count)."""
    return pd.DataFrame([r.to_row() for r in risks], columns=RISK_COLUMNS)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(report: InventoryReport, csv_paths: Sequence[str] = ()) -> str:
    """The inventory summary: counts, risks with remediation, and where the CSV files are."""
    counts = report.counts()
    by_key: dict[str, int] = {}
    for row in report.rows:
        by_key[row["key_source"]] = by_key.get(row["key_source"], 0) + 1
    lines = [
        f"# CMK inventory {report.taken_at.isoformat(timespec='seconds')}",
        "",
        f"- Environments: **{len(report.rows)}** ("
        + ", ".join(f"{k}: {v}" for k, v in sorted(by_key.items()))
        + ")",
        f"- Risks: **{counts['high']} high**, {counts['medium']} medium, {counts['low']} low",
    ]
    lines += [f"- CSV: `{p}`" for p in csv_paths]
    lines += ["", "## Risks", ""]
    if not report.risks:
        lines.append("No risk found.")
    else:
        lines += [
            "| severity | code | target | finding | what to do | environments |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.severity} | `{r.code}` | {_cell(r.target)} | {_cell(r.message)} | {_cell(r.remediation)} "
            f"| {len(r.environments)} |"
            for r in report.risks
        ]
    return "\n".join(lines) + "\n"
