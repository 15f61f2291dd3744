"""The approval automation: a paused run of our flows POSTs its link to the webhook block."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from blocks.approval import ApprovalSettings
from cmk.state.journal import Journal
from deployments.notifications import (
    AUTOMATION_NAME,
    delete_pause_automation,
    ensure_pause_automation,
    save_webhook_block,
)
from flows.approval import answer_approval, find_paused_run
from flows.parts.approval import request_approval
from tests.flows.webhook import WebhookRecorder


@pytest.fixture
def webhook(prefect_server: None) -> Iterator[WebhookRecorder]:
    """A recording webhook, and the automation removed afterwards (it must not outlive the test)."""
    recorder = WebhookRecorder()
    yield recorder
    delete_pause_automation()
    recorder.close()


def gate_flow(name: str, journal_path: Path) -> Any:
    """A flow named `name` that passes through the real approval gate once."""

    @flow(name=name)
    def gated(change_id: str, requested_by: str) -> str:
        outcome = request_approval(
            change_id=change_id,
            requested_by=requested_by,
            description_markdown="Probe change for the notification test.",
            settings=ApprovalSettings(timeout_seconds=120, poll_interval_seconds=1),
            journal=Journal(journal_path),
        )
        return outcome.status

    return gated


def run_and_answer(gated: Any, flow_name: str, change_id: str) -> tuple[Any, str]:
    """Run the gated flow, answer its pause from a thread; (final state, flow run id)."""
    seen: dict[str, str] = {}

    def answer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = find_paused_run(flow_name=flow_name)
            if run is not None:
                seen["id"] = str(run.id)
                time.sleep(1.5)  # leave the event time to reach the automation before resuming
                answer_approval(run.id, approver="carol", decision="approve", change_ticket="CHG-N1")
                return
            time.sleep(0.3)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    state = gated(change_id=change_id, requested_by="alice", return_state=True)
    thread.join(timeout=10)
    return state, seen.get("id", "")


def test_a_pause_of_our_flows_sends_its_link_and_others_do_not(
    webhook: WebhookRecorder, tmp_path: Path
) -> None:
    block_id = save_webhook_block(webhook.url)
    automation = ensure_pause_automation(block_id, ["cmk-notify-probe"])
    assert automation.name == AUTOMATION_NAME and automation.enabled

    other_state, other_id = run_and_answer(
        gate_flow("unrelated-pausing-flow", tmp_path / "j.jsonl"), "unrelated-pausing-flow", "CHG-OTHER"
    )
    assert other_state.is_completed() and other_id
    state, run_id = run_and_answer(
        gate_flow("cmk-notify-probe", tmp_path / "j.jsonl"), "cmk-notify-probe", "CHG-N1"
    )
    assert state.is_completed() and state.result() == "approved"

    post = webhook.wait_for(run_id)
    assert post["subject"].startswith("Approval needed: cmk-notify-probe run ")
    assert "change CHG-N1, requested by alice" in post["text"]
    assert "Open it and answer the form:" in post["text"]
    time.sleep(1.0)  # the unrelated pause happened first; any POST for it would have arrived by now
    assert not any(other_id in p.get("text", "") for p in webhook.posts)


def test_recreating_the_automation_keeps_exactly_one(webhook: WebhookRecorder) -> None:
    from prefect.automations import Automation

    block_id = save_webhook_block(webhook.url)
    ensure_pause_automation(block_id)
    ensure_pause_automation(block_id)
    assert Automation.read(name=AUTOMATION_NAME).trigger.match_related.root == {}  # type: ignore[union-attr]
    assert delete_pause_automation() == 1


def test_a_webhook_url_without_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with https://"):
        save_webhook_block("hooks.example/approvals")
