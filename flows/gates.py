"""Ask for approval once per change: a re-run of an approved change does not ask again."""

from __future__ import annotations

from prefect import get_run_logger

from blocks.approval import ApprovalSettings
from flows.approval import ApprovalOutcome, request_approval
from tasks.context import Change


def approve_once(
    change: Change,
    *,
    approval_settings: str,
    description: str,
    gate: str,
    required_approvals: int = 1,
    confirmation: str | None = None,
) -> ApprovalOutcome:
    """The recorded approval of this change, or a new one from the gate (recorded when approved)."""
    services = change.services
    earlier = services.checkpoints.step("approval")
    if earlier:
        get_run_logger().info(
            "Change %s was approved earlier by %s; not asking again.",
            change.change_id,
            ", ".join(a["approver"] for a in earlier["approvals"]),
        )
        return ApprovalOutcome(status="approved", approvals=earlier["approvals"])
    outcome = request_approval(
        change_id=change.change_id,
        requested_by=change.requested_by,
        settings=ApprovalSettings.load(approval_settings),
        journal=services.journal,
        gate=gate,
        description_markdown=description,
        required_approvals=required_approvals,
        confirmation=confirmation,
    )
    if outcome.approved:
        services.checkpoints.finish_step("approval", {"approvals": outcome.approvals})
    return outcome
