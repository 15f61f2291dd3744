"""How a change run ends: stopped before any change, not approved, or finished with its reports."""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from prefect.states import Cancelled, Failed, State

from cmk.domain.rows import EnvironmentRow
from cmk.domain.tables import HasStatus
from cmk.preflight import Finding
from flows.parts.approval import ApprovalOutcome
from flows.parts.summaries import approvals_section, counts_line
from tasks.context import Change
from tasks.events import announce_halt
from tasks.reports import publish_environment_table, publish_journal, publish_summary


def stop_before_change(
    change: Change,
    title: str,
    plan_md: str,
    rows: Sequence[EnvironmentRow],
    blocking: Sequence[Finding],
    *,
    dry_run: bool,
    nothing_to_do: str = "Nothing to do.",
    extra: dict[str, Any] | None = None,
) -> Any:
    """Publish the plan of a run that changes nothing: blocked by preflight (Failed), a dry run, or no work."""
    if blocking:
        verdict = f"**Stopped before any change**: {len(blocking)} blocking preflight finding(s)."
    elif dry_run:
        verdict = "Dry run: nothing was changed."
    else:
        verdict = nothing_to_do
    publish_summary(change, f"# {title}: plan\n\n{verdict}\n\n{plan_md}")
    publish_environment_table(change, [replace(r, status="planned") for r in rows])
    if blocking:
        return Failed(
            message=f"Preflight found {len(blocking)} blocking problem(s): "
            + "; ".join(f"{f.code} on {f.target}" for f in blocking)
        )
    return {
        "change_id": change.change_id,
        "dry_run": dry_run,
        "planned": [r.environment_id for r in rows],
        **(extra or {}),
    }


def end_unapproved(
    change: Change,
    title: str,
    outcome: ApprovalOutcome,
    nothing_done: str,
    summary_md: str | None = None,
) -> State:
    """Publish why nothing changed; Cancelled when rejected, Failed when the approval expired."""
    publish_summary(
        change,
        summary_md
        or f"# {title}: {outcome.status}\n\n{nothing_done} Reason: {outcome.reason}\n\n"
        f"## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n",
    )
    publish_journal(change)
    if outcome.status == "rejected":
        return Cancelled(message=f"Rejected by {outcome.rejected_by}: {outcome.reason}")
    return Failed(message=f"Approval expired: {outcome.reason}. {nothing_done}")


def publish_change_reports(change: Change, summary_md: str) -> None:
    """The summary and this change's journal, after the per-environment table."""
    publish_summary(change, summary_md)
    publish_journal(change)


def finish(rows: Sequence[HasStatus], halted: bool, report: dict[str, Any]) -> Any:
    """The run's result: Failed (with the report as data) when an environment failed or the run halted."""
    failures = sum(1 for r in rows if r.status == "failed")
    if halted:  # its own event: the failed-or-halted alert names the halt (deployments/alerts.py)
        announce_halt(str(report.get("change_id") or ""), failures, counts_line(rows))
    if failures or halted:
        return Failed(
            message=f"{failures} environment(s) failed; {counts_line(rows)}. See the summary artifact.",
            data=report,
        )
    return report
