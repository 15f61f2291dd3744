"""Alerts through a notification block: high inventory risks, failed or halted changes, approvals about to expire.

    python -m deployments.alerts --webhook-url https://hooks.example/cmk-alerts
    python -m deployments.alerts --block slack-webhook/cmk-ops     # any saved notification block

Each alert kind is one automation (`cmk-alert-*`) whose action sends through the block, with counts and the run's
UI link (the server needs PREFECT_UI_URL, docs/operations.md). Re-running replaces them; `--off` removes them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from deployments.notifications import block_document_id, catalog_flow_names, save_webhook_block
from tasks.events import APPROVAL_EXPIRING_EVENT, HALTED_EVENT, HIGH_RISKS_EVENT

DEFAULT_ALERTS_BLOCK = "cmk-alerts-webhook"
PREFIX = "cmk-alert-"
FAILED_EVENTS = frozenset({"prefect.flow-run.Failed", "prefect.flow-run.Crashed"})

ALERTS: dict[str, tuple[str, str, str]] = {  # name -> (description, subject, body)
    "high-risks": (
        "The inventory found high risks.",
        "CMK inventory: {{ event.payload.high }} high risk(s)",
        "The inventory of {{ event.payload.taken_at }} found {{ event.payload.high }} high, "
        "{{ event.payload.medium }} medium and {{ event.payload.low }} low risk(s). High: "
        "{{ event.payload.codes | join(', ') }}.\nSummary and what to do: {{ flow_run|ui_url }}",
    ),
    "change-failed": (
        "A run of our flows ended Failed or Crashed.",
        "CMK {{ flow.name }} run {{ flow_run.name }}: {{ flow_run.state.name }}",
        "The {{ flow.name }} run {{ flow_run.name }} (change {{ flow_run.parameters.change_id }}) ended "
        "{{ flow_run.state.name }}: {{ flow_run.state.message }}\nOpen it: {{ flow_run|ui_url }}",
    ),
    "change-halted": (
        "A change stopped starting environments: its failure budget ran out.",
        "CMK change {{ event.payload.change_id }} halted",
        "Change {{ event.payload.change_id }} halted after {{ event.payload.failures }} failed "
        "environment(s) ({{ event.payload.summary }}). Fix the cause and re-run it with the same change id.\n"
        "Open it: {{ flow_run|ui_url }}",
    ),
    "approval-expiring": (
        "A paused run's approval expires soon (sent once per pause by the approval-reminders flow).",
        "Approval expires soon: {{ event.payload.flow }} run {{ event.payload.name }}",
        "The {{ event.payload.flow }} run {{ event.payload.name }} (change {{ event.payload.change_id }}) waits "
        "for an approval that expires at {{ event.payload.expires_at }} UTC. Answer it before then: "
        "{{ flow_run|ui_url }}\nFlow run id: {{ event.payload.id }} (reminder)",
    ),
}


def trigger(kind: str, flow_names: Sequence[str] | None) -> Any:
    """The event trigger of one alert kind."""
    from prefect.events.schemas.automations import EventTrigger, Posture

    common: dict[str, Any] = {"posture": Posture.Reactive, "threshold": 1, "within": 0}
    if kind == "change-failed":
        related = {"prefect.resource.role": "flow", "prefect.resource.name": sorted(flow_names or [])}
        return EventTrigger(
            expect=set(FAILED_EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=related if flow_names else {},
            **common,
        )
    event, resource = {
        "high-risks": (HIGH_RISKS_EVENT, "cmk.inventory.*"),
        "change-halted": (HALTED_EVENT, "cmk.change.*"),
        "approval-expiring": (APPROVAL_EXPIRING_EVENT, "cmk.approval.*"),
    }[kind]
    return EventTrigger(expect={event}, match={"prefect.resource.id": resource}, **common)


def ensure_alert_automations(block_id: UUID, flow_names: Sequence[str] | None = None) -> list[Any]:
    """(Re)create one automation per alert kind, sending through the block; failed runs of these flows only."""
    from prefect.automations import Automation
    from prefect.events.actions import SendNotification

    delete_alert_automations()
    return [
        Automation(
            name=f"{PREFIX}{kind}",
            description=description,
            trigger=trigger(kind, flow_names),
            actions=[SendNotification(block_document_id=block_id, subject=subject, body=body)],
        ).create()
        for kind, (description, subject, body) in ALERTS.items()
    ]


def delete_alert_automations() -> int:
    """Delete every alert automation of ours (by name); returns how many there were."""
    from prefect.automations import Automation

    deleted = 0
    for kind in ALERTS:
        while deleted < 100:
            try:
                Automation.read(name=f"{PREFIX}{kind}").delete()
            except ValueError:
                break
            deleted += 1
    return deleted


def main(argv: list[str] | None = None) -> int:
    """Save the webhook block (or use a named one) and create the alert automations."""
    parser = argparse.ArgumentParser(prog="python -m deployments.alerts", description=__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook-url", help="create the alerts Custom Webhook block with this URL")
    target.add_argument("--block", help="an existing notification block, 'block-type-slug/block-name'")
    target.add_argument("--off", action="store_true", help="remove the alert automations")
    args = parser.parse_args(argv)
    if args.off:
        print(f"Removed {delete_alert_automations()} alert automation(s).")
        return 0
    try:
        block_id = (
            save_webhook_block(args.webhook_url, name=DEFAULT_ALERTS_BLOCK)
            if args.webhook_url
            else block_document_id(args.block)
        )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    created = ensure_alert_automations(block_id, catalog_flow_names())
    print(
        f"{len(created)} alert automation(s) notify through block {block_id}: {', '.join(a.name for a in created)}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
