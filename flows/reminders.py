"""Approval reminders: paused runs whose approval expires soon get one `cmk.approval.expiring` event each."""

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from tasks.dispatch import not_reminded_yet, paused_runs
from tasks.events import announce_expiring_approval

FLOW = "approval-reminders"


@flow(name=FLOW, log_prints=True)
def approval_reminders(window_minutes: int = 120) -> dict[str, Any]:
    """Remind approvers of every paused run whose approval expires within the window, once per pause.

    Args:
        window_minutes: Remind when a pause expires within this many minutes (the approval block's timeout is the whole wait).
    """
    logger = get_run_logger()
    if not 1 <= window_minutes <= 7 * 24 * 60:
        raise ValueError(f"window_minutes must be between 1 and 10080; got {window_minutes}.")
    now = datetime.now(UTC)
    horizon = now + timedelta(minutes=window_minutes)
    due = [
        r
        for r in paused_runs()
        if r["expires_at"] and now < datetime.fromisoformat(r["expires_at"]) <= horizon
    ]
    new = set(not_reminded_yet([r["pause_id"] for r in due]))
    reminded = [r for r in due if r["pause_id"] in new]
    for run in reminded:
        announce_expiring_approval(run)
    logger.info(
        "%d paused run(s) expire within %d minute(s); %d reminder(s) sent, %d sent before.",
        len(due),
        window_minutes,
        len(reminded),
        len(due) - len(reminded),
    )
    return {"due": [r["id"] for r in due], "reminded": [r["id"] for r in reminded]}
