"""Report and approval text of the lock and unlock flows."""

from typing import Any

from cmk.domain.tables import markdown_table
from cmk.plans.change import ChangePlan
from cmk.plans.lockdown import ADMIN_CENTER, Grant, LockRow
from flows.parts.summaries import approvals_section, counts_line, findings_section

BLAST_HEADINGS = {
    "name": "Environment",
    "environment_id": "Id",
    "sku": "SKU",
    "geo": "Geo",
    "policy": "Policy",
    "runtime_before": "Runtime now",
    "deadline": "Deleted if not restored by",
}


def blast_markdown(policy_name: str, blast: list[LockRow]) -> str:
    """The blast radius as a markdown table."""
    if not blast:
        return f"No environment is linked to `{policy_name}`: locking it takes nothing offline."
    records = [
        {
            **row.to_dict(),
            "environment_id": f"`{row.environment_id}`",
            "deadline": f"{row.deletion_deadline} ({row.deleted_after_days} days)"
            + ("" if row.deadline_documented else " (SKU not documented: shorter deadline assumed)"),
        }
        for row in blast
    ]
    return markdown_table(records, BLAST_HEADINGS)


def lock_plan_markdown(plan: ChangePlan, policy_name: str, method: str) -> str:
    """What this lock takes offline and what it revokes."""
    return (
        f"**Change** `{plan.change_id}` requested by **{plan.requested_by}**\n\n{plan.notes_markdown()}\n"
        f"### Blast radius: environments that go offline\n{blast_markdown(policy_name, plan.rows)}\n\n"
        "Locked environments cannot be restored from backup. Sandboxes not restored within 7 days and production "
        "environments not restored within 30 days are deleted by the service.\n\n"
        f"### Writes: key access to revoke (method `{method}`)\n{plan.writes_markdown()}\n\n"
        + (f"### Preflight\n{findings_section(plan.findings)}\n\n" if plan.findings else "")
        + "The key, the vault and the enterprise policy are never deleted. Undo with the **unlock** flow and "
        f"`lock_change_id` = `{plan.change_id}`.\n"
    )


def lock_approval_markdown(policy_name: str, count: int, plan_md: str) -> str:
    """The lock approval form's description."""
    return (
        f"## Approve taking {count} environment(s) OFFLINE by locking policy `{policy_name}`\n\n{plan_md}\n"
        f"Two different approvers, neither the requester, must approve. Type **{policy_name}** exactly into "
        "typed_confirmation to approve, or reject with a comment."
    )


def lock_summary_markdown(
    change_id: str,
    policy_name: str,
    health: str,
    rows: list[LockRow],
    problems: list[str],
    outcome: Any,
    plan_md: str,
    csv_path: Any,
) -> str:
    """The lock's final report."""
    offline = sum(1 for r in rows if r.status == "offline")
    verdict = (
        "Verified: the policy is Unhealthy and every environment in the blast radius is offline."
        if not problems
        else "**Verification failed**:\n" + "\n".join(f"- {p}" for p in problems)
    )
    return (
        f"# Lock {change_id}: policy `{policy_name}`\n\n- Policy health: {health}\n"
        f"- Environments offline: {offline} of {len(rows)}\n- CSV: `{csv_path}`\n\n{verdict}\n\n"
        f"## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n\n{plan_md}\n"
        "## To undo\nRun **unlock** with `lock_change_id` = "
        f"`{change_id}` before the deletion deadlines above.\n"
    )


def unlock_plan_markdown(plan: ChangePlan, policy_name: str, source: str) -> str:
    """What this unlock restores and re-enables, for the approver and the dry-run report."""
    return (
        f"**Change** `{plan.change_id}` requested by **{plan.requested_by}**\n\n{plan.notes_markdown()}\n"
        f"- Policy: `{policy_name}`\n- Access to restore comes from {source}.\n"
        "- Order: restore the key access, wait until the policy reports Healthy, then re-enable each "
        "environment still offline and verify it.\n\n"
        f"### Writes\n{plan.writes_markdown()}\n\n### Preflight\n{findings_section(plan.findings)}\n"
    )


def unhealthy_markdown(change_id: str, policy_name: str, grants: list[Grant], error: str) -> str:
    """The report when access was restored but the policy did not turn Healthy."""
    restored = "\n".join(f"- {g.describe()}" for g in grants)
    return (
        f"# Unlock {change_id}: policy `{policy_name}` is not Healthy\n\nRestored:\n{restored}\n\n{error}\n\n"
        "No environment was re-enabled. Check the key (enabled, not expired) and the vault's network rules, then "
        "run unlock again with the same change id.\n"
    )


def unlock_summary_markdown(
    change_id: str,
    source: str,
    policy_name: str,
    grants: list[Grant],
    rows: list[LockRow],
    outcome: Any,
    csv_path: Any,
) -> str:
    """The unlock's final report."""
    restored = "\n".join(f"- {g.describe()}" for g in grants)
    failed = [r for r in rows if r.status == "failed"]
    manual = [r for r in rows if r.status == ADMIN_CENTER]
    return (
        f"# Unlock {change_id}: policy `{policy_name}`\n\n- Access restored from {source}:\n{restored}\n"
        f"- Policy health: Healthy\n- Environments: {counts_line(rows)}\n- CSV: `{csv_path}`\n\n"
        + (
            f"**{len(manual)} environment(s) to re-enable in the admin center** (no documented API): see the "
            f"checklist artifact, then run unlock again with change id `{change_id}` to verify them.\n\n"
            if manual
            else ""
        )
        + (
            (
                "Verified: every other environment is Enabled and still linked to the policy.\n"
                if manual
                else "Verified: every environment is Enabled and still linked to the policy.\n"
            )
            if not failed
            else "**Not back online**:\n"
            + "\n".join(f"- `{r.environment_id}`: {r.error}" for r in failed)
            + f"\n\nFix the cause and run unlock again with change id `{change_id}`.\n"
        )
        + f"\n## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n"
    )


def admin_center_checklist(change_id: str, policy_name: str, rows: list[LockRow]) -> str:
    """Per-environment steps for the admin center, where re-enabling a locked environment has no documented API."""
    items = "\n".join(
        f"- [ ] **{r.name or r.environment_id}** (`{r.environment_id}`, {r.geo or 'geo unknown'}): Power Platform "
        "admin center > Environments > select it > on the *Environment disabled* card choose **Re-enable "
        "environment** (takes up to 5 minutes)"
        for r in rows
    )
    return (
        f"# Unlock {change_id}: re-enable {len(rows)} environment(s) in the admin center\n\n"
        f"Key access to policy `{policy_name}` is restored and the policy is Healthy. Microsoft documents no API "
        "that re-enables an environment a customer-managed key locked, so an admin with read access to the "
        "policy does it in the admin center, once per environment:\n\n"
        f"{items}\n\nThen run unlock again with change id `{change_id}`: it re-reads every environment and "
        "verifies that each one is Enabled and still on the customer-managed key.\n"
    )
