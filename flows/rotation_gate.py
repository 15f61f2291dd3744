"""The rotation's approval: the complete plan in the form, asked once per change; how an unapproved run ends."""

from typing import Any

from cmk.plan import ChangePlan
from cmk.rotation_plan import FLOW
from flows.approval import ApprovalOutcome
from flows.endings import end_unapproved, stop_before_change
from flows.gates import approve_once
from flows.rotation_text import summary_markdown
from tasks.context import Services


def stop_before_writes(plan: ChangePlan, plan_md: str, dry_run: bool) -> Any:
    """The end of a dry run or of a blocked plan: the plan published, nothing written."""
    title = f"Rotation {plan.change_id}"
    return stop_before_change(FLOW, plan.change_id, title, plan_md, plan.rows, plan.blocking, dry_run=dry_run)


def approve_plan(
    services: Services, plan: ChangePlan, plan_md: str, *, heading: str, gate: str, approval_settings: str
) -> ApprovalOutcome:
    """Ask (once per change) to approve exactly this plan."""
    return approve_once(
        services,
        change_id=plan.change_id,
        requested_by=plan.requested_by,
        approval_settings=approval_settings,
        gate=gate,
        description=f"## {heading}\n\n{plan_md}",
    )


def not_approved(services: Services, change_id: str, outcome: ApprovalOutcome, what: str) -> Any:
    """Publish why nothing changed and end the run Cancelled (rejected) or Failed (expired)."""
    summary = summary_markdown(
        f"Rotation {change_id}: {outcome.status}",
        [f"{what} Reason: {outcome.reason}"],
        [],
        outcome.approvals,
        outcome.refusals,
        change_id,
        FLOW,
    )
    return end_unapproved(services, FLOW, change_id, f"Rotation {change_id}", outcome, what, summary)
