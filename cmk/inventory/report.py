"""The inventory report: one row per environment and the risks, as frames and as a markdown summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from cmk.domain.models import (
    EnvironmentInfo,
    PolicyInfo,
)
from cmk.domain.tables import markdown_table
from cmk.inventory.risks import (
    SEVERITY_ORDER,
    Risk,
    RiskSeverity,
    drift_risks,
    environment_risks,
    geo_risks,
    key_risks,
    policy_retirement_risks,
    retirement_risks,
    utc_text,
    vault_risks,
)
from cmk.inventory.snapshot import TenantSnapshot, link_failed, linked_policy, policy_index

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
RISK_HEADINGS = dict(
    zip(RISK_COLUMNS, ["severity", "code", "target", "finding", "what to do", "environments"], strict=True)
)


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
                    "Restore the identity's Get/WrapKey/UnwrapKey on the key (or the RBAC role), or the vault's "
                    "trusted-services bypass, then run unlock.",
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
        "key_expires_on": utc_text(key.expires_on) if key else "",
        "risks": "; ".join(codes),
    }


def rows_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The environment rows as a frame with the standard columns."""
    frame = pd.DataFrame(list(rows), columns=ROW_COLUMNS)
    return frame.astype(object).where(frame.notna(), "")


def risks_frame(risks: Sequence[Risk]) -> pd.DataFrame:
    """The risks as a frame (environments as a count)."""
    return pd.DataFrame([r.to_row() for r in risks], columns=RISK_COLUMNS)


def summary_markdown(
    report: InventoryReport, csv_paths: Sequence[str] = (), self_healing: Sequence[str] = ()
) -> str:
    """The inventory summary: counts, risks with remediation, self-healing dispatched, where the CSV files are."""
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
    lines += [f"- Self-healing: {line}" for line in self_healing]
    lines += ["", "## Risks", ""]
    if not report.risks:
        lines.append("No risk found.")
    else:
        records = [{**r.to_row(), "code": f"`{r.code}`"} for r in report.risks]
        lines.append(markdown_table(records, RISK_HEADINGS))
    return "\n".join(lines) + "\n"
