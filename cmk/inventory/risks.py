"""The inventory's risk findings: preflight rules graded as risks, plus what only a whole-tenant view can see."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cmk.domain.models import (
    EnvironmentInfo,
    PolicyInfo,
    VaultInfo,
)
from cmk.inventory.drift import find_drift
from cmk.inventory.snapshot import KeyState, TenantSnapshot, is_locked, link_failed
from cmk.preflight import Finding, check_key, check_vault
from cmk.preflight.environment import DISALLOWED_SKUS, normalise_geo

RiskSeverity = Literal["high", "medium", "low"]

SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2}


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


# Preflight rules that are also inventory risks: finding code -> (risk code, severity). The rule, its message and
# its remediation live once, in cmk/preflight/; the inventory only names and grades them.
VAULT_RISKS: dict[str, tuple[str, RiskSeverity]] = {
    "VAULT_SOFT_DELETE_OFF": ("vault-soft-delete-off", "high"),
    "VAULT_PURGE_PROTECTION_OFF": ("vault-purge-protection-off", "high"),
    "VAULT_NETWORK_BLOCKS_SERVICE": ("vault-network-blocks-service", "high"),
    "VAULT_NETWORK_BYPASS_IMPLICIT": ("vault-network-bypass-implicit", "low"),
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


def utc_text(value: datetime | None) -> str:
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
    """Soft delete, purge protection and a network that lets the service in: the preflight's vault rules."""
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
                    f"Key version {r.version} passed its retire-after date {utc_text(r.retire_after)} but policy "
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
                    f"{utc_text(r.retire_after)} (change {r.change_id or '?'}).",
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
                    f"Old policy {policy.name} passed its retire-after date {utc_text(entry.retire_after)} (change "
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
                    f"{utc_text(entry.retire_after)} (change {entry.change_id}); its key and access are still kept.",
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
