"""Re-grant: put back key-access grants our journal recorded and someone removed; read, plan, approve, apply, verify."""

from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Failed

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.plans.change import ChangePlan
from cmk.plans.regrant import RecordedGrant, plan_regrant
from cmk.preflight.parameters import Parameters
from flows.parts.approval import approve_once
from flows.parts.endings import end_unapproved, publish_change_reports, stop_before_change
from flows.parts.summaries import approvals_section, findings_section
from tasks.access import read_recorded_grants, regrant
from tasks.context import open_change

FLOW = "regrant"
NOTHING_CHANGED = "No grant was written."


@flow(name=FLOW, log_prints=True)
def regrant_access(
    change_id: str,
    requested_by: str,
    grants: tuple[dict[str, Any], ...],
    dry_run: bool = False,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
    approval_settings: str = DEFAULT_APPROVAL_BLOCK,
) -> dict[str, Any]:
    """Grant again what the journal says a change granted and what is gone now; nothing else is written.

    Args:
        change_id: Your change number; re-running with the same id resumes the change safely.
        requested_by: Who asks for this change; they cannot approve it themselves.
        grants: The grants to put back, as the inventory's access-missing finding names them (kind, scope, principal_id, permissions or role).
        dry_run: Only show what would be granted; change nothing.
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
        approval_settings: Name of the approval settings block.
    """
    logger = get_run_logger()
    wanted = check_parameters(change_id, requested_by, grants)
    change = open_change(
        azure_connection,
        powerplatform_connection,
        flow=FLOW,
        change_id=change_id.strip(),
        requested_by=requested_by.strip(),
    )
    services, title = change.services, f"Re-grant {change.change_id}"

    # Read and plan
    present, vaults = read_recorded_grants(services, wanted)
    plan = plan_regrant(change.change_id, change.requested_by, wanted, present, vaults)
    plan_md = plan_markdown(plan)
    if plan.blocking or dry_run or not plan.pending:
        return stop_before_change(
            change,
            title,
            plan_md,
            [],
            plan.blocking,
            dry_run=dry_run,
            nothing_to_do="Every grant is in place: nothing to do.",
            extra={"writes": [w.line() for w in plan.pending]},
        )

    # Approve
    outcome = approve_once(
        change,
        approval_settings=approval_settings,
        description=f"## Approve granting {len(plan.pending)} access grant(s) again\n\n{plan_md}",
        gate=FLOW,
    )
    if not outcome.approved:
        return end_unapproved(change, title, outcome, NOTHING_CHANGED)

    # Apply: only the planned writes (a grant in place is left alone)
    written = []
    for grant in wanted:
        if plan.permits(grant.action, grant.target):
            regrant(services, grant)
            written.append(grant)

    # Verify and report
    after, _ = read_recorded_grants(services, wanted)
    missing = [g for g, ok in zip(wanted, after, strict=True) if not ok]
    summary = (
        f"# {title}\n\n"
        + "".join(
            f"- Granted again: {g.describe()} (recorded by `{g.recorded_by or '?'}`)\n" for g in written
        )
        + "".join(f"- **Still missing**: {g.describe()}\n" for g in missing)
        + f"\n## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n"
    )
    publish_change_reports(change, summary)
    report = {
        "change_id": change.change_id,
        "granted": [g.to_dict() for g in written],
        "missing": [g.to_dict() for g in missing],
    }
    if missing:
        return Failed(message=f"{len(missing)} grant(s) are still missing after the change.", data=report)
    logger.info("Re-grant %s: %d grant(s) put back.", change.change_id, len(written))
    return report


def check_parameters(
    change_id: str, requested_by: str, grants: tuple[dict[str, Any], ...]
) -> list[RecordedGrant]:
    """Refuse bad parameters before any request; the grants."""
    p = Parameters()
    p.change_id(change_id)
    p.requester(requested_by)
    wanted = []
    if not grants:
        p.refuse("grants is empty: name at least one grant to put back.")
    for grant in grants:
        try:
            wanted.append(RecordedGrant.from_dict(grant))
        except ValueError as exc:
            p.refuse(f"grants: {exc}")
    p.done()
    return wanted


def plan_markdown(plan: ChangePlan[dict[str, Any]]) -> str:
    """The plan as the approval form and the dry run show it."""
    parts = [f"### Writes\n\n{plan.writes_markdown()}\n"]
    if plan.findings:
        parts.append(f"### Findings\n\n{findings_section(plan.findings)}\n")
    parts.append(
        "Nothing else is written: no grant is removed, no environment or policy is touched.\n"
        "A grant the journal recorded as removed is never put back here."
    )
    return "\n".join(parts)
