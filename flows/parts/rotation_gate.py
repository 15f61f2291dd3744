"""The rotation's approval: the complete plan in the form, asked once per change; how an unapproved run ends."""

from typing import Any

from cmk.plans.change import ChangePlan
from flows.parts.approval import ApprovalOutcome, approve_once
from flows.parts.endings import end_unapproved, stop_before_change
from flows.parts.rotation_text import summary_markdown
from tasks.context import Change


def stop_before_writes(change: Change, plan: ChangePlan, plan_md: str, dry_run: bool) -> Any:
    """The end of a dry run or of a blocked plan: the plan published, nothing written."""
    title = f"Rotation {change.change_id}"
    return stop_before_change(change, title, plan_md, plan.rows, plan.blocking, dry_run=dry_run)


def approve_plan(
    change: Change, plan_md: str, *, heading: str, gate: str, approval_settings: str
) -> ApprovalOutcome:
    """Ask (once per change) to approve exactly this plan."""
    return approve_once(
        change,
        approval_settings=approval_settings,
        gate=gate,
        description=f"## {heading}\n\n{plan_md}",
    )


def not_approved(change: Change, outcome: ApprovalOutcome, what: str) -> Any:
    """Publish why nothing changed and end the run Cancelled (rejected) or Failed (expired)."""
    change_id = change.change_id
    summary = summary_markdown(
        f"Rotation {change_id}: {outcome.status}",
        [f"{what} Reason: {outcome.reason}"],
        [],
        outcome.approvals,
        outcome.refusals,
        change_id,
        change.flow,
    )
    return end_unapproved(change, f"Rotation {change_id}", outcome, what, summary)
