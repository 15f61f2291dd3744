"""Tell approvers a run waits for them: an automation on every pause, sending the run's UI link to a block.

    python -m deployments.notifications --webhook-url https://hooks.example/approvals
    python -m deployments.notifications --block slack-webhook/cmk-approvals   # any saved notification block

The default block is a Custom Webhook that POSTs JSON {"subject": ..., "text": ..., "flow_run_id": ...}.
For Slack or Teams save a `SlackWebhook` / `MicrosoftTeamsWebhook` block (their URLs are secrets) and pass
`--block`. The server needs PREFECT_UI_URL so `{{ flow_run|ui_url }}` renders a link (docs/operations.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any
from uuid import UUID

AUTOMATION_NAME = "cmk-approval-needed"
DEFAULT_WEBHOOK_BLOCK = "cmk-approval-webhook"
PAUSE_EVENTS = frozenset({"prefect.flow-run.Paused", "prefect.flow-run.Suspended"})
SUBJECT = "Approval needed: {{ flow.name }} run {{ flow_run.name }}"
BODY = (
    "The {{ flow.name }} run {{ flow_run.name }} waits for an approval "
    "(change {{ flow_run.parameters.change_id }}, requested by {{ flow_run.parameters.requested_by }}).\n"
    "Open it and answer the form: {{ flow_run|ui_url }}\n"
    "Flow run id: {{ flow_run.id }}"
)


def save_webhook_block(
    url: str, *, name: str = DEFAULT_WEBHOOK_BLOCK, headers: dict[str, str] | None = None
) -> UUID:
    """Create or overwrite the default Custom Webhook notification block; returns its document id."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    if not url.startswith(("https://", "http://")):
        raise ValueError(
            "The webhook URL must start with https:// (or http:// on a private network); it is not echoed "
            "here because webhook URLs often carry a token."
        )
    block = CustomWebhookNotificationBlock(
        name="CMK approvals",
        url=url,
        method="POST",
        json_data={"subject": "{{subject}}", "text": "{{body}}"},
        headers=headers,
    )
    return block.save(name, overwrite=True)


def block_document_id(slug: str) -> UUID:
    """The document id of a saved block, by 'block-type-slug/block-name'."""
    from prefect.blocks.core import Block

    if "/" not in slug:
        raise ValueError(
            f"Name the block as 'block-type-slug/block-name', e.g. slack-webhook/ops; got {slug!r}."
        )
    block = Block.load(slug)
    assert block._block_document_id is not None
    return block._block_document_id


def ensure_pause_automation(block_id: UUID, flow_names: Sequence[str] | None = None) -> Any:
    """(Re)create the automation: any pause of these flows (all flows when None) notifies through the block."""
    from prefect.automations import Automation
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    delete_pause_automation()
    related: dict[str, Any] = {}
    if flow_names:
        related = {"prefect.resource.role": "flow", "prefect.resource.name": sorted(flow_names)}
    return Automation(
        name=AUTOMATION_NAME,
        description="A CMK flow run paused for an approval: send its UI link to the approvers.",
        trigger=EventTrigger(
            expect=set(PAUSE_EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=related,
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    ).create()


def delete_pause_automation() -> int:
    """Delete every automation of ours (by name); returns how many there were."""
    from prefect.automations import Automation

    deleted = 0
    while deleted < 100:
        try:
            Automation.read(name=AUTOMATION_NAME).delete()
        except ValueError:  # none (left)
            break
        deleted += 1
    return deleted


def catalog_flow_names() -> list[str]:
    """The flow names of every catalog deployment that imports."""
    from deployments.catalog import resolve

    return sorted({flow.name for _, flow in resolve().available})


def main(argv: list[str] | None = None) -> int:
    """Save the webhook block (or use a named one) and create the automation."""
    parser = argparse.ArgumentParser(prog="python -m deployments.notifications", description=__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook-url", help="create the default Custom Webhook block with this URL")
    target.add_argument("--block", help="an existing notification block, 'block-type-slug/block-name'")
    parser.add_argument(
        "--all-flows", action="store_true", help="notify on pauses of any flow, not only ours"
    )
    args = parser.parse_args(argv)
    try:
        block_id = save_webhook_block(args.webhook_url) if args.webhook_url else block_document_id(args.block)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    automation = ensure_pause_automation(block_id, None if args.all_flows else catalog_flow_names())
    print(f"Automation {automation.name} ({automation.id}) notifies through block {block_id}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
