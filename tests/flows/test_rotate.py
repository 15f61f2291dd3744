"""The rotate flow under the Prefect test server, against the onboarded demo tenant over HTTPS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flows.rotate import rotate
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows import rotation_support
from tests.flows.rotation_support import APPROVE, lifecycle_posts, linked_system_ids, policy_id, system_id

onboarded_sim = rotation_support.onboarded_sim
rotation_env = rotation_support.rotation_env


def swap_params(sim: RunningSimulator, change_id: str, **extra: Any) -> dict[str, Any]:
    """policy-swap parameters for the onboarded tenant."""
    return {
        "change_id": change_id,
        "requested_by": "alice",
        "policy_id": policy_id(sim),
        "mode": "policy-swap",
        "new_policy_name": "ep-cmk-eu-2",
        "new_key_name": "pp-cmk-key-2",
        **extra,
    }


def test_policy_swap_moves_every_environment_of_the_old_policy(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    approver("rotate", [APPROVE])
    state = rotate(**swap_params(rotation_env, "CHG-SWAP"), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    new_sid = system_id(rotation_env, "ep-cmk-eu-2")
    assert linked_system_ids(rotation_env) == {env_id: new_sid for env_id in EUROPE_ELIGIBLE}
    assert lifecycle_posts(rotation_env, "link") == {env_id: 1 for env_id in EUROPE_ELIGIBLE}
    assert lifecycle_posts(rotation_env, "unlink") == {}
    rows = {r["environment_id"]: r for r in result["rows"]}
    assert {r["status"] for r in rows.values()} == {"succeeded"}
    for row in rows.values():
        assert row["policy_before"].lower() == policy_id(rotation_env).lower()
        assert row["policy_after"].lower() == policy_id(rotation_env, "ep-cmk-eu-2").lower()
        assert row["key_before"] == "kv-cmk-demo/pp-cmk-key"
        assert row["key_after"] == "kv-cmk-demo/pp-cmk-key-2"
    register = json.loads((Path(os.environ["CMK_STATE_DIR"]) / "policy-retirements.json").read_text())
    [entry] = register["policies"]
    assert entry["policy_id"].lower() == policy_id(rotation_env).lower()
    assert entry["retire_after"] == result["retire_after"]


def test_key_version_creates_a_version_keeps_the_previous_and_records_its_retirement(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    keys_before = rotation_env.control.state()["keyvault"]["kv-cmk-demo"]["keys"]
    since = rotation_env.control.last_seq()
    approver("rotate", [APPROVE])
    state = rotate(
        policy_id=policy_id(rotation_env), change_id="CHG-KV", requested_by="alice", return_state=True
    )
    assert state.is_completed(), state.message
    result = state.result()
    assert result["new_version"] != result["previous_version"]
    assert {r["status"] for r in result["rows"]} == {"succeeded"}
    assert {r["environment_id"] for r in result["rows"]} == set(EUROPE_ELIGIBLE)
    assert all(r["key_after"].endswith(result["new_version"]) for r in result["rows"])
    # no environment was touched: a key version needs no Power Platform call
    assert lifecycle_posts(rotation_env, "link", since) == {}
    assert [
        r for r in rotation_env.control.requests(since=since, service="bap") if r["method"] != "GET"
    ] == []
    key = rotation_env.control.state()["keyvault"]["kv-cmk-demo"]["keys"]["pp-cmk-key"]
    assert len(key["versions"]) == len(keys_before["pp-cmk-key"]["versions"]) + 1
    assert all(v["enabled"] for v in key["versions"])
    register = json.loads((Path(os.environ["CMK_STATE_DIR"]) / "key-retirements.json").read_text())
    [entry] = register["versions"]
    assert entry["version"] == result["previous_version"]
    assert datetime.fromisoformat(entry["retire_after"]) - datetime.now(UTC) > timedelta(days=27, hours=23)


def test_key_version_adopts_the_version_a_rotation_policy_made_without_creating_one(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    from azure.keyvault.keys import KeyClient

    from tests.support import mi_credential

    vault = next(v for v in rotation_env.control.state()["arm"]["vaults"] if v["name"] == "kv-cmk-demo")
    client = KeyClient(
        vault["properties"]["vaultUri"],
        mi_credential(rotation_env.endpoints, "keyvault-admin"),
        verify_challenge_resource=False,
        connection_verify=rotation_env.ca_bundle,
    )
    with client:
        previous = client.get_key("pp-cmk-key").properties.version
        rotated = client.rotate_key("pp-cmk-key").properties.version  # what a Rotate lifetime action does
    since = rotation_env.control.last_seq()
    approver("rotate", [APPROVE])
    state = rotate(
        policy_id=policy_id(rotation_env),
        change_id="CHG-KV-ADOPT",
        requested_by="alice",
        create_new_version=False,
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    assert (result["previous_version"], result["new_version"]) == (previous, rotated)
    key_writes = [
        r for r in rotation_env.control.requests(since=since, service="keyvault") if r["method"] != "GET"
    ]
    assert key_writes == []  # verified and recorded, nothing created
    register = json.loads((Path(os.environ["CMK_STATE_DIR"]) / "key-retirements.json").read_text())
    assert [e["version"] for e in register["versions"]] == [previous]


def test_key_version_without_a_rotated_version_stops_before_any_change(
    rotation_env: RunningSimulator,
) -> None:
    since = rotation_env.control.last_seq()
    state = rotate(
        policy_id=policy_id(rotation_env),
        change_id="CHG-KV-EARLY",
        requested_by="alice",
        create_new_version=False,
        return_state=True,
    )
    assert state.is_failed()
    assert "KEY_NOT_ROTATED_YET" in state.message
    assert [r for r in rotation_env.control.requests(since=since) if r["method"] != "GET"] == []


def test_a_failing_canary_halts_the_run_and_the_others_are_untouched(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    canary = EUROPE_ELIGIBLE[0]
    rotation_env.control.add_fault(
        service="bap",
        path=f"{canary}/enterprisePolicies/Encryption/link",
        status=400,
        code="EnvironmentValidationFailed",
        message="Injected: storage account unavailable.",
    )
    approver("rotate", [APPROVE])
    state = rotate(
        **swap_params(rotation_env, "CHG-CANARY", fanout="per-wave", failure_threshold=0),
        return_state=True,
    )
    assert state.is_failed()
    rows = {r["environment_id"]: r for r in state.result(raise_on_failure=False)["rows"]}
    assert rows[canary]["status"] == "failed" and "storage account unavailable" in rows[canary]["error"]
    assert {rows[e]["status"] for e in EUROPE_ELIGIBLE[1:]} == {"not-started"}
    assert "canary" in rows[EUROPE_ELIGIBLE[1]]["error"]
    assert set(lifecycle_posts(rotation_env, "link")) == {canary}
    old_sid = system_id(rotation_env, "ep-cmk-eu")
    assert linked_system_ids(rotation_env) == {env_id: old_sid for env_id in EUROPE_ELIGIBLE}


def test_busy_environment_is_waited_out_with_unlink_then_link(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    busy = EUROPE_ELIGIBLE[1]
    rotation_env.control.add_fault(
        service="bap",
        method="POST",
        path=f"{busy}/enterprisePolicies/Encryption/unlink",
        status=409,
        code="OperationNotStartable",
        message="This operation cannot be performed because there is an active lifecycle operation.",
        count=2,
    )
    approver("rotate", [APPROVE])
    state = rotate(
        **swap_params(rotation_env, "CHG-BUSY", swap_method="unlink-then-link", fanout="per-wave"),
        return_state=True,
    )
    assert state.is_completed(), state.message
    new_sid = system_id(rotation_env, "ep-cmk-eu-2")
    assert linked_system_ids(rotation_env) == {env_id: new_sid for env_id in EUROPE_ELIGIBLE}
    assert lifecycle_posts(rotation_env, "link") == {env_id: 1 for env_id in EUROPE_ELIGIBLE}
    unlinks = lifecycle_posts(rotation_env, "unlink")
    assert unlinks == {**{env_id: 1 for env_id in EUROPE_ELIGIBLE}, busy: 3}  # two 409s, then accepted
    journal = Path(os.environ["CMK_STATE_DIR"]) / "journal.jsonl"
    busy_entries = [json.loads(line) for line in journal.read_text().splitlines() if '"busy"' in line]
    assert len(busy_entries) == 2 and all(e["target"] == busy for e in busy_entries)


def test_policy_swap_resumes_after_the_process_is_killed_mid_wave(
    rotation_env: RunningSimulator, approver: Any, tmp_path: Path
) -> None:
    rotation_env.control.settings(link_seconds=600)  # links stay in flight until the clock is advanced
    args = swap_params(rotation_env, "CHG-KILL", canary_size=0, concurrency=4, fanout="per-wave")
    script = tmp_path / "run_rotate.py"
    script.write_text(f"from flows.rotate import rotate\nrotate(**{args!r})\n")
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": os.getcwd(), "PREFECT_API_URL": PREFECT_API_URL.value()}
    child = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    try:
        approver("rotate", [APPROVE])
        deadline = time.monotonic() + 120
        while sum(lifecycle_posts(rotation_env, "link").values()) < len(EUROPE_ELIGIBLE):
            assert child.poll() is None, "the flow process ended before its links were in flight"
            assert time.monotonic() < deadline, "links were not posted in time"
            time.sleep(0.3)
        time.sleep(0.5)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    checkpoint = json.loads((Path(os.environ["CMK_STATE_DIR"]) / "changes" / "CHG-KILL.json").read_text())
    assert {e["status"] for e in checkpoint["environments"].values()} == {"in-flight"}

    rotation_env.control.advance(601)
    state = rotate(**args, return_state=True)  # approved in the first run: not asked again
    assert state.is_completed(), state.message
    assert lifecycle_posts(rotation_env, "link") == {env_id: 1 for env_id in EUROPE_ELIGIBLE}
    new_sid = system_id(rotation_env, "ep-cmk-eu-2")
    assert linked_system_ids(rotation_env) == {env_id: new_sid for env_id in EUROPE_ELIGIBLE}
