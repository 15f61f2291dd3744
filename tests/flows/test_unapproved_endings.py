"""A rejected or expired approval ends the run with one clear line of its own, never an ERROR or a traceback."""

from __future__ import annotations

import time
from typing import Any

from prefect import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from blocks.approval import ApprovalSettings
from flows.onboard import onboard
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows.test_onboard import params

ERROR = 40


def run_logs(flow_run_id: Any, until: str) -> list[Any]:
    """Every log record of one flow run, once the line containing `until` has arrived (logs ship in batches)."""
    deadline = time.monotonic() + 30
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        if any(until in r.message for r in logs) or time.monotonic() > deadline:
            return logs
        time.sleep(0.5)


def test_rejection_ends_cancelled_with_the_reason_and_no_error(
    flow_env: RunningSimulator, approver: Any
) -> None:
    approver("onboard", [{"approver": "bob", "decision": "reject", "comment": "freeze week"}])
    state = onboard(
        **params(flow_env, "CHG-END-REJECT", environments=[EUROPE_ELIGIBLE[0]]), return_state=True
    )
    assert state.is_cancelled()
    assert state.message == "Rejected by bob: freeze week"
    logs = run_logs(state.state_details.flow_run_id, until="Finished in state Cancelled")
    assert any("rejected by bob" in r.message for r in logs)
    assert [r.message for r in logs if r.level >= ERROR] == []
    assert not any("Traceback" in r.message for r in logs)


def test_expiry_ends_failed_with_its_own_message_and_no_error(flow_env: RunningSimulator) -> None:
    ApprovalSettings(timeout_seconds=5, poll_interval_seconds=1).save("short-approvals", overwrite=True)
    state = onboard(
        **params(
            flow_env, "CHG-END-EXPIRE", environments=[EUROPE_ELIGIBLE[0]], approval_settings="short-approvals"
        ),
        return_state=True,
    )
    assert state.is_failed()
    # Not the server's "The flow was failed and never resumed.": the run says why and what did not change.
    assert state.message.startswith("Approval expired: no valid answer within 5 seconds.")
    logs = run_logs(state.state_details.flow_run_id, until="Finished in state Failed")
    assert any("expired" in r.message for r in logs)
    assert [r.message for r in logs if r.level >= ERROR] == []
