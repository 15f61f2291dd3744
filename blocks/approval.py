"""Who may approve changes, and how long an approval may wait."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field


class ApprovalSettings(Block):
    """Approval rules shared by every flow's approval gate."""

    _block_type_name = "CMK Approval Settings"
    _block_type_slug = "cmk-approval-settings"
    _description = (
        "Who may approve CMK changes (four eyes: never the requester) and how long a request waits."
    )

    allowed_approvers: list[str] = Field(
        default_factory=list,
        description="Names or emails allowed to approve; empty means anyone except the requester.",
    )
    timeout_seconds: int = Field(
        default=86400, ge=5, description="How long a paused run waits for an answer, in seconds."
    )
    poll_interval_seconds: int = Field(default=5, ge=1, le=60, description="How often the paused run checks.")

    def is_allowed(self, approver: str) -> bool:
        """Whether approver is on the allowed list (or the list is empty)."""
        if not self.allowed_approvers:
            return True
        return approver.strip().lower() in {a.strip().lower() for a in self.allowed_approvers}
