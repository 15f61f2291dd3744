"""Self-healing dispatcher: an inventory finding's event -> the change flow that repairs it, which then asks approval.

Started by the `cmk-self-healing` automation (deployments/remediation.py) on each `cmk.finding.detected` event.
It writes nothing itself and approves nothing: it starts the repairing deployment with prefilled parameters,
requested by `cmk-self-healing`, and that run pauses for an approver like any manual run.
"""

import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from cmk.inventory.remediation import (
    DEPLOYMENTS,
    REFUSED,
    REQUESTER,
    SETTING,
    check_request,
    opted_in,
)
from tasks.dispatch import finding_tag, runs_in_flight, start_run

FLOW = "remediate"


@flow(name=FLOW, log_prints=True)
def remediate(
    finding_code: str,
    target: str,
    finding_key: str,
    change_id: str,
    parameters: dict[str, Any],
    summary: str = "",
) -> dict[str, Any]:
    """Start the change run that repairs one inventory finding, unless one is already in flight for it.

    Args:
        finding_code: The inventory's risk code (link-failed, access-missing, key-expiring, environment-locked).
        target: What the finding is about (environment, grant or policy).
        finding_key: The finding's stable key; runs for it carry the tag cmk-finding:KEY.
        change_id: The change id of the repairing run.
        parameters: The repairing flow's prefilled parameters (ids only).
        summary: One line saying what the repair does.
    """
    logger = get_run_logger()
    outcome = dispatch(finding_code, finding_key, change_id, parameters)
    logger.info("Finding %s on %s: %s.", finding_code, target, outcome["status"])
    create_markdown_artifact(
        f"# Self-healing: `{finding_code}`\n\n- Finding: {summary or target}\n- Target: `{target}`\n"
        f"- Outcome: **{outcome['status']}** {outcome.get('detail', '')}\n",
        key="remediation-dispatch",
        description=f"Self-healing dispatch of {finding_code}",
    )
    if outcome["status"] == REFUSED:
        raise ValueError(f"Remediation refused: {outcome['detail']}")
    return outcome


def dispatch(code: str, key: str, change_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Check the opt-in and the request, look for a run in flight, then start the repairing deployment."""
    try:
        enabled = opted_in(os.environ.get(SETTING))
    except ValueError as exc:
        return {"status": REFUSED, "detail": str(exc)}
    refusal = check_request(code, parameters)
    if refusal:
        return {"status": REFUSED, "detail": refusal}
    if code not in enabled:
        return {"status": "not opted in", "detail": f"(`{code}` is not in {SETTING})"}
    tag = finding_tag(key)
    busy = runs_in_flight(tag)
    if busy:
        names = ", ".join(f"{r['name']} ({r['state']})" for r in busy)
        return {"status": "already in flight", "detail": f"run(s) {names}; nothing started", "runs": busy}
    run = start_run(
        DEPLOYMENTS[code],
        {**parameters, "change_id": change_id, "requested_by": REQUESTER},
        ["cmk", "remediation", tag],
        idempotency_key=f"{key}:{change_id}",
    )
    return {
        "status": "started",
        "detail": f"{DEPLOYMENTS[code]} run {run['name']} (change `{change_id}`) waits for approval",
        "run": run,
        "change_id": change_id,
    }
