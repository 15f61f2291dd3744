"""`python -m flows.approval`: a wrong answer from the command line is one clear line and exit code 2, not a traceback."""

from __future__ import annotations

import threading
import time
from typing import Any

from flows.approval import answer_approval, find_paused_run, main
from flows.onboard import onboard
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows.test_onboard import params


def test_a_typed_confirmation_for_a_run_that_asks_none_is_refused_clearly(
    flow_env: RunningSimulator, capsys: Any
) -> None:
    ended: dict[str, Any] = {}
    run_flow = threading.Thread(
        target=lambda: ended.update(
            state=onboard(**params(flow_env, "CHG-CLI", environments=[EUROPE_ELIGIBLE[0]]), return_state=True)
        )
    )
    run_flow.start()
    deadline = time.monotonic() + 120
    while (run := find_paused_run(flow_name="onboard")) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run is not None
    answer = ["--approver", "carol", "--decision", "approve", "--ticket", "T1"]
    assert main([str(run.id), *answer, "--confirm", ""]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("Not answered: this run asks for no typed confirmation") and "without --confirm" in err
    )
    assert "Traceback" not in err
    assert find_paused_run(run.id) is not None  # still waiting for a valid answer
    answer_approval(run.id, approver="bob", decision="reject", comment="cli test")
    run_flow.join(60)
    assert ended["state"].is_cancelled()


def test_a_malformed_run_id_is_refused_clearly(capsys: Any) -> None:
    assert main(["run-42", "--approver", "carol", "--decision", "approve", "--ticket", "T1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Not answered:") and "flow run id" in err
