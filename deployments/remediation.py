"""Self-healing wiring: an automation that runs the remediate deployment on each inventory finding event.

    python -m deployments.remediation          # create (or replace) the automation
    python -m deployments.remediation --off    # remove it

The automation only starts the dispatcher; whether a finding is repaired is switched per finding code with
CMK_REMEDIATE in the environment of the process that runs the flows (default: none), and every repair pauses for
approval (docs/operations.md, "Self-healing").
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from uuid import UUID

from cmk.inventory.remediation import EVENT

AUTOMATION_NAME = "cmk-self-healing"
DISPATCHER = "remediate/remediate-finding"
PARAMETERS = {  # rendered from the event by the server; single expressions keep their JSON type
    "finding_code": "{{ event.payload.code }}",
    "target": "{{ event.payload.target }}",
    "finding_key": "{{ event.payload.key }}",
    "change_id": "{{ event.payload.change_id }}",
    "parameters": "{{ event.payload.parameters }}",
    "summary": "{{ event.payload.summary }}",
}


def dispatcher_id(name: str = DISPATCHER) -> UUID:
    """The id of the served remediate deployment."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name).id


def ensure_remediation_automation(deployment_id: UUID) -> Any:
    """(Re)create the automation: every `cmk.finding.detected` event runs the dispatcher with its payload."""
    from prefect.automations import Automation
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture

    delete_remediation_automation()
    return Automation(
        name=AUTOMATION_NAME,
        description="An inventory finding that a change flow can repair: start that flow (it asks approval).",
        trigger=EventTrigger(
            expect={EVENT},
            match={"prefect.resource.id": "cmk.finding.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id, parameters=dict(PARAMETERS))],
    ).create()


def delete_remediation_automation() -> int:
    """Delete the automation (by name); returns how many there were."""
    from prefect.automations import Automation

    deleted = 0
    while deleted < 100:
        try:
            Automation.read(name=AUTOMATION_NAME).delete()
        except ValueError:
            break
        deleted += 1
    return deleted


def main(argv: list[str] | None = None) -> int:
    """Create or remove the self-healing automation."""
    parser = argparse.ArgumentParser(prog="python -m deployments.remediation", description=__doc__)
    parser.add_argument("--off", action="store_true", help="remove the automation")
    args = parser.parse_args(argv)
    if args.off:
        print(f"Removed {delete_remediation_automation()} automation(s).")
        return 0
    automation = ensure_remediation_automation(dispatcher_id())
    print(f"Automation {automation.name} ({automation.id}) runs {DISPATCHER} on every {EVENT} event.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
