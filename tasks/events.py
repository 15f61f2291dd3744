"""Prefect events our automations react to: repairable findings, high risks, halted changes, expiring approvals."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.events import emit_event

from cmk.inventory.remediation import EVENT, SETTING, Remediation, opted_in
from cmk.inventory.report import InventoryReport

HIGH_RISKS_EVENT = "cmk.inventory.high-risks"
HALTED_EVENT = "cmk.change.halted"
APPROVAL_EXPIRING_EVENT = "cmk.approval.expiring"


def run_related() -> list[dict[str, str]]:
    """The current flow run as a related resource, so automations can render its UI link."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return []
    return [related_flow_run(str(context.flow_run.id), context.flow_run.name)]


def related_flow_run(flow_run_id: str, name: str = "") -> dict[str, str]:
    """A flow run as an event's related resource."""
    return {
        "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
        "prefect.resource.role": "flow-run",
        "prefect.resource.name": name,
    }


@task(name="announce-findings", cache_policy=NO_CACHE)
def announce_findings(report: InventoryReport, found: Sequence[Remediation]) -> list[str]:
    """One event per repairable finding switched on in CMK_REMEDIATE, and one for high risks; the summary lines."""
    logger = get_run_logger()
    taken_at, counts = report.taken_at, report.counts()
    try:
        codes = opted_in(os.environ.get(SETTING))
    except ValueError as exc:
        logger.error("%s; no remediation is dispatched.", exc)
        codes = frozenset()
    related = run_related()
    lines = []
    for item in found:
        if item.code not in codes:
            lines.append(f"not dispatched (`{item.code}` is not in {SETTING}): {item.summary}")
            continue
        emit_event(
            EVENT,
            resource={"prefect.resource.id": item.resource_id, "prefect.resource.name": item.summary},
            related=related,
            payload=item.payload(taken_at),
        )
        lines.append(
            f"dispatched to `{item.deployment}` as change `{item.change_id(taken_at)}` (waits for approval): "
            f"{item.summary}"
        )
    if counts.get("high"):
        emit_event(
            HIGH_RISKS_EVENT,
            resource={"prefect.resource.id": f"cmk.inventory.{taken_at:%Y%m%dT%H%M%S}"},
            related=related,
            payload={
                **counts,
                "codes": sorted({r.code for r in report.risks if r.severity == "high"}),
                "taken_at": taken_at.isoformat(timespec="seconds"),
            },
        )
    return lines


@task(name="announce-halt", cache_policy=NO_CACHE)
def announce_halt(change_id: str, failures: int, summary: str) -> None:
    """The event of a change that stopped starting environments (its failure budget ran out)."""
    emit_event(
        HALTED_EVENT,
        resource={"prefect.resource.id": f"cmk.change.{change_id}", "prefect.resource.name": change_id},
        related=run_related(),
        payload={"change_id": change_id, "failures": failures, "summary": summary},
    )


def announce_expiring_approval(run: dict[str, Any]) -> None:
    """The event of one paused run whose approval expires soon (its fields: id, name, flow, expires_at)."""
    emit_event(
        APPROVAL_EXPIRING_EVENT,
        resource={"prefect.resource.id": f"cmk.approval.{run['id']}", "prefect.resource.name": run["name"]},
        related=[related_flow_run(run["id"], run["name"])],
        payload=run,
    )
