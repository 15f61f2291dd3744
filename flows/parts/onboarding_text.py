"""Markdown of the onboarding flow: the plan (approval form, dry run) and the final summary (pure text)."""

from datetime import datetime
from typing import Any

from cmk.domain.rows import EnvironmentRow
from cmk.plans.change import ChangePlan
from cmk.plans.onboarding import OnboardingRequest
from flows.parts.summaries import (
    approvals_section,
    counts_line,
    environment_list,
    findings_section,
    next_steps,
)

FLOW = "onboard"


def plan_markdown(plan: ChangePlan, request: OnboardingRequest, canary_size: int, concurrency: int) -> str:
    """What this onboarding will change, for the approver and the dry-run report."""
    notes = plan.notes_markdown() or "- none\n"
    return (
        f"**Change** `{request.change_id}` requested by **{request.requested_by}**\n\n"
        f"- Key `{request.key_name}` ({request.key_type} {request.key_size}) in vault "
        f"`{request.vault_id.rsplit('/', 1)[-1]}`; enterprise policy `{request.policy_name}` in resource "
        f"group `{request.resource_group}`, geo `{request.location}`\n"
        f"- Environments to encrypt: **{len(plan.rows)}**, canary {canary_size} first, then {concurrency} "
        "at a time\n- Expected downtime: each environment is briefly disabled while it is linked; encryption "
        "then continues in the background.\n\n"
        f"### Planned writes, in this order\n{plan.writes_markdown()}\n\n"
        f"### Environments\n{environment_list(plan.rows)}\n\n### Preflight\n{findings_section(plan.findings)}\n\n"
        f"### Notes\n{notes}"
    )


def approval_markdown(plan_md: str, plan: ChangePlan) -> str:
    """The approval form's description."""
    return (
        f"## Approve onboarding: {len(plan.pending)} write(s), {len(plan.rows)} environment(s)\n\n"
        "Nothing has been written yet: every write below is made only after approval.\n\n"
        f"{plan_md}\nApprove to make these writes in this order, or reject with a comment."
    )


def summary_markdown(
    change_id: str,
    policy_name: str,
    system_id: str | None,
    key_version: str,
    rows: list[EnvironmentRow],
    outcome: Any,
    started: datetime,
    finished: datetime,
    halt_reason: str,
    csv_path: Any,
) -> str:
    """The final report."""
    return (
        f"# Onboarding {change_id}\n\n"
        f"- Policy `{policy_name}` (systemId `{system_id}`), key version `{key_version}`\n"
        f"- Started {started.isoformat(timespec='seconds')}, finished {finished.isoformat(timespec='seconds')} "
        f"({(finished - started).total_seconds():.0f} s)\n- Result: {counts_line(rows)}\n"
        + (f"- Halted: {halt_reason}\n" if halt_reason else "")
        + f"- CSV: `{csv_path}`\n\n## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n\n"
        f"## What to do next\n{next_steps(rows, change_id, FLOW)}\n"
    )
