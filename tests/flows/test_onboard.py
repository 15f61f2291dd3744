"""The onboarding flow under the Prefect test server, against the simulator over HTTPS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.onboard import onboard
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows.conftest import demo_vault_id

WRITE_METHODS = {"PUT", "POST", "PATCH", "DELETE"}
APPROVE = {"approver": "carol", "decision": "approve", "change_ticket": "CHG0042"}


def params(sim: RunningSimulator, change_id: str, **extra: Any) -> dict[str, Any]:
    """Onboarding parameters for the demo tenant's europe environments."""
    return {
        "change_id": change_id,
        "requested_by": "alice",
        "vault_id": demo_vault_id(sim),
        "policy_name": "ep-cmk-eu",
        "resource_group": "rg-cmk",
        "location": "europe",
        **extra,
    }


def env_state(sim: RunningSimulator) -> dict[str, dict[str, Any]]:
    """Environment id -> its encryption ('microsoft', 'byok', 'cmk') and linked systemId, from the simulator."""
    envs = sim.control.state()["bap"]["environments"]
    return {
        env_id: {"encryption": e["encryption"], "system_id": e["policy_system_id"]}
        for env_id, e in envs.items()
    }


def artifacts_of(flow_run_id: Any) -> dict[str, Any]:
    """The run's artifacts by key."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found if a.key}


def writes_since(sim: RunningSimulator, since: int) -> list[dict[str, Any]]:
    """Mutating requests to ARM, Key Vault or BAP since a request-log mark."""
    return [
        r
        for r in sim.control.requests(since=since)
        if r["method"] in WRITE_METHODS and r["service"] in {"arm", "keyvault", "bap"}
    ]


def link_posts(sim: RunningSimulator, since: int = 0) -> dict[str, int]:
    """How many link POSTs each environment received."""
    counts: dict[str, int] = {}
    for r in sim.control.requests(since=since, service="bap", method="POST"):
        if r["path"].lower().endswith("/link"):
            counts[r["target"]] = counts.get(r["target"], 0) + 1
    return counts


def test_happy_path_links_the_eligible_environments(flow_env: RunningSimulator, approver: Any) -> None:
    approver("onboard", [APPROVE])
    state = onboard(**params(flow_env, "CHG-HAPPY"), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    linked = {r["environment_id"] for r in result["rows"] if r["status"] == "succeeded"}
    assert linked == set(EUROPE_ELIGIBLE)
    envs = env_state(flow_env)
    for env_id in EUROPE_ELIGIBLE:
        assert envs[env_id]["encryption"] == "cmk"
        assert envs[env_id]["system_id"].lower() == result["system_id"].lower()
    assert [e for e, v in envs.items() if v["encryption"] == "cmk"] == list(EUROPE_ELIGIBLE)
    assert link_posts(flow_env) == {env_id: 1 for env_id in EUROPE_ELIGIBLE}

    journal = [
        json.loads(line)
        for line in (Path(os.environ["CMK_STATE_DIR"]) / "journal.jsonl").read_text().splitlines()
    ]
    actions = [e["action"] for e in journal if e["change_id"] == "CHG-HAPPY"]
    assert "approval.approve" in actions
    assert sum(1 for a in actions if "link" in a) >= len(EUROPE_ELIGIBLE)

    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert {"onboard-environments", "onboard-summary", "onboard-journal"} <= set(artifacts)
    table = json.loads(artifacts["onboard-environments"].data)
    assert {row["environment_id"] for row in table} == set(EUROPE_ELIGIBLE)
    assert all(row["key_managed_by_after"] == "Customer" for row in table)
    assert "carol" in artifacts["onboard-summary"].data
    assert Path(result["csv"]).read_text().count("\n") == len(EUROPE_ELIGIBLE) + 1


def test_reject_cancels_and_links_nothing(flow_env: RunningSimulator, approver: Any) -> None:
    approver("onboard", [{"approver": "bob", "decision": "reject", "comment": "not during quarter close"}])
    state = onboard(**params(flow_env, "CHG-REJECT"), return_state=True)
    assert state.is_cancelled()
    assert "not during quarter close" in state.message
    assert link_posts(flow_env) == {}
    assert all(v["encryption"] == "microsoft" for k, v in env_state(flow_env).items() if k in EUROPE_ELIGIBLE)


def test_self_approval_is_refused_and_the_gate_keeps_waiting(
    flow_env: RunningSimulator, approver: Any
) -> None:
    gate = approver("onboard", [{**APPROVE, "approver": "Alice"}, APPROVE])
    state = onboard(**params(flow_env, "CHG-SELF", environments=[EUROPE_ELIGIBLE[0]]), return_state=True)
    assert state.is_completed(), state.message
    assert [a["approver"] for a in gate.given] == ["Alice", "carol"]
    journal = Path(os.environ["CMK_STATE_DIR"]) / "journal.jsonl"
    refused = [json.loads(line) for line in journal.read_text().splitlines() if '"approval.refused"' in line]
    assert len(refused) == 1 and "four-eyes" in refused[0]["after"]["reason"]


def test_blocking_preflight_finding_stops_before_any_write(flow_env: RunningSimulator) -> None:
    trial = "c0de0e4a-7c2b-4e5f-9a10-0000000e0008"
    since = flow_env.control.last_seq()
    state = onboard(**params(flow_env, "CHG-TRIAL", environments=[trial]), return_state=True)
    assert state.is_failed()
    assert "ENV_SKU_NOT_ALLOWED" in state.message
    assert writes_since(flow_env, since) == []


def test_one_failing_environment_does_not_stop_the_others(flow_env: RunningSimulator, approver: Any) -> None:
    failing = EUROPE_ELIGIBLE[2]
    flow_env.control.add_fault(
        service="bap",
        path=f"{failing}/enterprisePolicies/Encryption/link",
        status=400,
        code="EnvironmentValidationFailed",
        message="Injected: storage account unavailable.",
    )
    approver("onboard", [APPROVE])
    state = onboard(**params(flow_env, "CHG-ONEFAIL", failure_threshold=2), return_state=True)
    assert state.is_failed()
    rows = {r["environment_id"]: r for r in state.result(raise_on_failure=False)["rows"]}
    assert rows[failing]["status"] == "failed"
    assert "storage account unavailable" in rows[failing]["error"]
    assert {e for e, r in rows.items() if r["status"] == "succeeded"} == set(EUROPE_ELIGIBLE) - {failing}


def in_flight(checkpoint: Path) -> int:
    """How many environments a change's checkpoint records as in flight (0 while it does not exist)."""
    try:
        data = json.loads(checkpoint.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return sum(1 for e in data.get("environments", {}).values() if e.get("status") == "in-flight")


def test_rerun_after_a_killed_process_finishes_without_a_second_link_post(
    flow_env: RunningSimulator, approver: Any, tmp_path: Path
) -> None:
    flow_env.control.settings(link_seconds=600)  # links stay in flight until the clock is advanced
    args = params(flow_env, "CHG-CRASH", concurrency=4, canary_size=0)
    script = tmp_path / "run_onboard.py"
    script.write_text(f"from flows.onboard import onboard\nonboard(**{args!r})\n")
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": os.getcwd(), "PREFECT_API_URL": PREFECT_API_URL.value()}
    path = Path(os.environ["CMK_STATE_DIR"]) / "changes" / "CHG-CRASH.json"
    child = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    try:
        approver("onboard", [APPROVE])
        deadline = time.monotonic() + 120
        # Kill once every link was posted AND its handle checkpointed (the POST is logged a moment earlier).
        while min(sum(link_posts(flow_env).values()), in_flight(path)) < len(EUROPE_ELIGIBLE):
            assert child.poll() is None, "the flow process ended before its links were in flight"
            assert time.monotonic() < deadline, "links were not posted in time"
            time.sleep(0.3)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    checkpoint = json.loads(path.read_text())
    assert all(e["status"] == "in-flight" for e in checkpoint["environments"].values())

    flow_env.control.advance(601)
    mark = flow_env.control.last_seq()
    state = onboard(**args, return_state=True)  # approved in the first run: not asked again
    assert state.is_completed(), state.message
    assert link_posts(flow_env) == {env_id: 1 for env_id in EUROPE_ELIGIBLE}
    # The re-run applied the recorded plan: provider, key, policy and grants were done, links only polled.
    assert writes_since(flow_env, mark) == []
    made = [r["operation"] for r in writes_since(flow_env, 0)]
    for op in ("register_provider", "create_key", "put_deployment", "update_vault_access_policy"):
        assert sum(1 for m in made if m.endswith(op)) == 1, (op, made)
    assert all(v["encryption"] == "cmk" for k, v in env_state(flow_env).items() if k in EUROPE_ELIGIBLE)


def test_unanswered_approval_expires_and_changes_nothing(flow_env: RunningSimulator) -> None:
    from blocks.approval import ApprovalSettings

    ApprovalSettings(timeout_seconds=5, poll_interval_seconds=1).save("short-approvals", overwrite=True)
    state = onboard(
        **params(
            flow_env, "CHG-EXPIRE", environments=[EUROPE_ELIGIBLE[0]], approval_settings="short-approvals"
        ),
        return_state=True,
    )
    assert state.is_failed()  # the server fails a timed-out pause itself, with its own message
    assert link_posts(flow_env) == {}
    summary = artifacts_of(state.state_details.flow_run_id)["onboard-summary"].data
    assert "expired" in summary and "Nothing was changed" in summary
    journal = Path(os.environ["CMK_STATE_DIR"]) / "journal.jsonl"
    assert '"approval.expired"' in journal.read_text()
