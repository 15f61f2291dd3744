"""The approval gate every change flow uses: pause for a typed form, enforce four eyes, journal each decision."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import get_run_logger, pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field

from blocks.approval import ApprovalSettings
from cmk.state.journal import Journal
from tasks.context import Change


class ApprovalForm(RunInput):
    """The form a change manager fills in to answer a paused run."""

    approver: str = Field(
        description="Your name or email. It must differ from the person who requested the change."
    )
    decision: Literal["approve", "reject"] = Field(
        description="approve lets the run continue; reject cancels it."
    )
    change_ticket: str = Field(
        default="",
        description="The change ticket that authorises this change, e.g. CHG0042 (required to approve).",
    )
    comment: str = Field(default="", description="Why you decided so (required when rejecting).")


class ConfirmedApprovalForm(ApprovalForm):
    """The approval form for destructive changes: the target's name must be typed back exactly."""

    typed_confirmation: str = Field(
        default="",
        description="Type the exact name shown in the description to confirm you know what goes offline.",
    )


@dataclass
class ApprovalOutcome:
    """What the gate concluded."""

    status: Literal["approved", "rejected", "expired"]
    approvals: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    rejected_by: str | None = None
    reason: str = ""

    @property
    def approved(self) -> bool:
        """Whether the change may go ahead."""
        return self.status == "approved"


def pause_key(gate: str, attempt: int) -> str:
    """A pause key from the gate's name: Prefect allows lower-case letters, digits and dashes only."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", gate.lower()).strip("-") or "approval"
    return f"{cleaned[:80]}-{attempt}"


def refusal_reason(
    answer: ApprovalForm,
    *,
    requested_by: str,
    settings: ApprovalSettings,
    earlier_approvers: list[str],
    confirmation: str | None,
) -> str | None:
    """Why an answer cannot be accepted, or None when it can."""
    approver = answer.approver.strip()
    if not approver:
        return "the approver name is empty"
    if approver.lower() == requested_by.strip().lower():
        return f"'{approver}' requested this change and cannot approve or reject it (four-eyes rule)"
    if not settings.is_allowed(approver):
        return f"'{approver}' is not on the list of allowed approvers"
    if approver.lower() in {a.lower() for a in earlier_approvers}:
        return f"'{approver}' has already approved; a different person must give the next approval"
    if answer.decision == "approve" and not answer.change_ticket.strip():
        return "a change ticket is required to approve"
    if answer.decision == "reject" and not answer.comment.strip():
        return "a comment is required to reject, so the requester knows why"
    if answer.decision == "approve" and confirmation is not None:
        typed = getattr(answer, "typed_confirmation", "")
        if typed != confirmation:
            return f"the typed confirmation {typed!r} does not match {confirmation!r} exactly"
    return None


def request_approval(
    *,
    change_id: str,
    requested_by: str,
    description_markdown: str,
    settings: ApprovalSettings,
    journal: Journal,
    gate: str = "approval",
    required_approvals: int = 1,
    confirmation: str | None = None,
) -> ApprovalOutcome:
    """Pause until enough valid answers arrive; invalid ones are refused with a logged reason."""
    logger = get_run_logger()
    form = ConfirmedApprovalForm if confirmation is not None else ApprovalForm
    outcome = ApprovalOutcome(status="expired")
    attempt = 0
    while True:
        attempt += 1
        waiting = required_approvals - len(outcome.approvals)
        header = (
            f"**Approval {len(outcome.approvals) + 1} of {required_approvals}**\n\n"
            if required_approvals > 1
            else ""
        )
        refused = ""
        if outcome.refusals:
            refused = f"\n\n> Previous answer refused: {outcome.refusals[-1]}.\n"
        logger.info("Waiting for %d approval(s) at gate '%s' of change %s.", waiting, gate, change_id)
        try:
            answer = pause_flow_run(
                wait_for_input=form.with_initial_data(description=header + description_markdown + refused),
                timeout=settings.timeout_seconds,
                poll_interval=settings.poll_interval_seconds,
                key=pause_key(gate, attempt),
            )
        except FlowPauseTimeout:
            outcome.status = "expired"
            outcome.reason = f"no valid answer within {settings.timeout_seconds} seconds"
            journal.record(
                actor="approval-gate",
                action="approval.expired",
                target=gate,
                before=None,
                after={"reason": outcome.reason},
                change_id=change_id,
                outcome="expired",
            )
            logger.warning("Approval of change %s expired: %s.", change_id, outcome.reason)
            reclaim_expired_pause()
            return outcome
        reason = refusal_reason(
            answer,
            requested_by=requested_by,
            settings=settings,
            earlier_approvers=[a["approver"] for a in outcome.approvals],
            confirmation=confirmation,
        )
        answered = {
            "approver": answer.approver.strip(),
            "decision": answer.decision,
            "change_ticket": answer.change_ticket.strip(),
            "comment": answer.comment.strip(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if reason is not None:
            outcome.refusals.append(reason)
            journal.record(
                actor=answered["approver"] or "unknown",
                action="approval.refused",
                target=gate,
                before=None,
                after={**answered, "reason": reason},
                change_id=change_id,
                outcome="refused",
            )
            logger.warning("Approval answer refused: %s. The run stays paused for a valid answer.", reason)
            continue
        journal.record(
            actor=answered["approver"],
            action=f"approval.{answer.decision}",
            target=gate,
            before=None,
            after=answered,
            change_id=change_id,
        )
        if answer.decision == "reject":
            outcome.status = "rejected"
            outcome.rejected_by = answered["approver"]
            outcome.reason = answered["comment"]
            outcome.approvals.append(answered)
            logger.warning(
                "Change %s rejected by %s: %s", change_id, answered["approver"], answered["comment"]
            )
            return outcome
        outcome.approvals.append(answered)
        logger.info(
            "Approved by %s (%d of %d).", answered["approver"], len(outcome.approvals), required_approvals
        )
        if len(outcome.approvals) >= required_approvals:
            outcome.status = "approved"
            return outcome


def reclaim_expired_pause() -> None:
    """Set the expired paused run back to Running, so it ends in the flow's own state and message.

    Without this the server refuses the run's final state after a pause timeout and records its own
    "The flow was failed and never resumed." instead of why and what (was not) changed.
    """
    from prefect import get_client
    from prefect.context import get_run_context
    from prefect.states import Running

    flow_run = get_run_context().flow_run  # type: ignore[union-attr]
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run.id, Running(message="Approval expired; reporting."), force=True)


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
