"""Decommission lock and unlock under the Prefect test server, against a simulator with linked environments."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.lock import lock
from flows.unlock import unlock
from simulator.testing import RunningSimulator
from tests.flows.linked_scenario import (
    EU_POLICY,
    EU_POLICY_ENVS,
    FINANCE,
    OTHER_POLICY,
    OTHER_POLICY_ENVS,
    SALES_UAT,
    US_POLICY,
    US_POLICY_ENVS,
    environments,
    prepare_linked_env,
    start_linked_sim,
    writes_since,
)
from tests.flows.test_onboard import artifacts_of

linked_sim = pytest.fixture(scope="module")(start_linked_sim)


@pytest.fixture
def linked(prefect_server: None, linked_sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    """The linked scenario, reset, with fast operations and the default blocks pointing at it."""
    yield from prepare_linked_env(linked_sim, tmp_path)


def approve(name: str, typed: str = "ep-cmk-eu") -> dict[str, Any]:
    """A valid approval answer for the lock gate."""
    return {
        "approver": name,
        "decision": "approve",
        "change_ticket": "CHG0099",
        "typed_confirmation": typed,
    }


REJECT = {"approver": "erin", "decision": "reject", "comment": "stop: refused answers only"}
APPROVE_UNLOCK = {"approver": "carol", "decision": "approve", "change_ticket": "CHG0100"}


def journal(change_id: str) -> list[dict[str, Any]]:
    """The journal entries of one change."""
    path = Path(os.environ["CMK_STATE_DIR"]) / "journal.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["change_id"] == change_id]


def runtime(sim: RunningSimulator) -> dict[str, str]:
    """Environment id -> Enabled/Disabled."""
    return {env_id: e["runtime"] for env_id, e in environments(sim).items()}


def policy_identity_entry(sim: RunningSimulator, policy_name: str) -> dict[str, Any] | None:
    """The demo vault's access-policy entry of a policy's identity."""
    state = sim.control.state()["arm"]
    principal = next(p for p in state["enterprise_policies"] if p["name"] == policy_name)["identity"][
        "principalId"
    ]
    vault = next(v for v in state["vaults"] if v["name"] == "kv-cmk-demo")
    return next((e for e in vault["properties"]["accessPolicies"] if e["objectId"] == principal), None)


def demo_key_enabled(sim: RunningSimulator) -> bool:
    """Whether the latest version of the demo vault's key is enabled."""
    key = sim.control.state()["keyvault"]["kv-cmk-demo"]["keys"]["pp-cmk-key"]
    return next(v for v in key["versions"] if v["version"] == key["latest"])["enabled"]


def test_dry_run_shows_the_blast_radius_and_changes_nothing(linked: RunningSimulator) -> None:
    since = linked.control.last_seq()
    state = lock(
        change_id="CHG-LOCK-DRY", requested_by="alice", policy_id=EU_POLICY, dry_run=True, return_state=True
    )
    assert state.is_completed(), state.message
    result = state.result()
    blast = {r["environment_id"]: r for r in result["blast_radius"]}
    assert set(blast) == set(EU_POLICY_ENVS)
    assert blast[FINANCE]["sku"] == "Production" and blast[FINANCE]["deleted_after_days"] == 30
    assert blast[SALES_UAT]["sku"] == "Sandbox" and blast[SALES_UAT]["deleted_after_days"] == 7
    assert [g["method"] for g in result["would_revoke"]] == ["access_policy"]
    artifacts = artifacts_of(state.state_details.flow_run_id)
    table = json.loads(artifacts["lock-blast-radius"].data)
    assert {row["environment_id"] for row in table} == set(EU_POLICY_ENVS)
    assert "Dry run: nothing was changed" in artifacts["lock-summary"].data
    assert writes_since(linked, since) == []


def test_disabling_a_shared_key_shows_every_policy_that_uses_it(linked: RunningSimulator) -> None:
    since = linked.control.last_seq()
    state = lock(
        change_id="CHG-LOCK-KEY-DRY",
        requested_by="alice",
        policy_id=OTHER_POLICY,
        method="disable_key",
        dry_run=True,
        return_state=True,
    )
    assert state.is_completed(), state.message
    blast = {r["environment_id"]: r["policy"] for r in state.result()["blast_radius"]}
    assert blast == {
        **dict.fromkeys(OTHER_POLICY_ENVS, "ep-cmk-eu-other"),
        **dict.fromkeys(EU_POLICY_ENVS, "ep-cmk-eu"),
    }
    assert writes_since(linked, since) == []


@pytest.mark.parametrize(
    ("case", "answers", "refusal"),
    [
        ("one-approver", [approve("carol"), REJECT], None),
        ("initiator", [approve("Alice"), REJECT], "four-eyes"),
        ("wrong-name", [approve("carol", typed="ep-cmk-EU"), REJECT], "does not match"),
    ],
)
def test_lock_is_refused_and_nothing_changes(
    linked: RunningSimulator, approver: Any, case: str, answers: list[dict[str, Any]], refusal: str | None
) -> None:
    before = runtime(linked)
    since = linked.control.last_seq()
    gate = approver("lock", answers)
    change_id = f"CHG-LOCK-{case.upper()}"
    state = lock(change_id=change_id, requested_by="alice", policy_id=EU_POLICY, return_state=True)
    assert state.is_cancelled(), state.message
    assert len(gate.given) == 2  # the gate paused again after the first answer instead of going ahead
    actions = [e["action"] for e in journal(change_id)]
    if refusal is None:
        assert actions == ["approval.approve", "approval.reject"]
        from prefect.input.actions import read_flow_run_input

        form = read_flow_run_input("paused-lock-revoke-1-description", state.state_details.flow_run_id)
        assert all(env_id in form for env_id in EU_POLICY_ENVS)  # the blast radius is in the approval form
        assert "(30 days)" in form and "(7 days)" in form and "Type **ep-cmk-eu** exactly" in form
    else:
        refused = [e for e in journal(change_id) if e["action"] == "approval.refused"]
        assert len(refused) == 1 and refusal in refused[0]["after"]["reason"]
        assert "approval.approve" not in actions
    assert "lock.access_revoked" not in actions
    assert writes_since(linked, since) == []
    assert runtime(linked) == before
    assert policy_identity_entry(linked, "ep-cmk-eu") is not None


def test_approved_lock_takes_exactly_the_policy_offline_and_unlock_brings_it_back(
    linked: RunningSimulator, approver: Any
) -> None:
    before = runtime(linked)
    entry_before = policy_identity_entry(linked, "ep-cmk-eu")
    since = linked.control.last_seq()
    approver("lock", [approve("carol"), approve("dave")])
    args = {
        "change_id": "CHG-LOCK",
        "requested_by": "alice",
        "policy_id": EU_POLICY,
        "lock_timeout_seconds": 60,
    }
    state = lock(**args, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["policy_health"] == "Unhealthy"
    after = runtime(linked)
    assert {e for e, r in after.items() if r == "Disabled"} == set(EU_POLICY_ENVS)
    assert {e: r for e, r in after.items() if e not in EU_POLICY_ENVS} == {
        e: r for e, r in before.items() if e not in EU_POLICY_ENVS
    }
    assert policy_identity_entry(linked, "ep-cmk-eu") is None
    assert policy_identity_entry(linked, "ep-cmk-eu-other") is not None
    writes = writes_since(linked, since)
    assert len(writes) == 1 and writes[0]["service"] == "arm" and "accessPolicies/remove" in writes[0]["path"]
    arm = linked.control.state()["arm"]
    assert {p["name"] for p in arm["enterprise_policies"]} >= {"ep-cmk-eu"}
    assert linked.control.state()["keyvault"]["kv-cmk-demo"]["keys"]["pp-cmk-key"]
    revoked = [e for e in journal("CHG-LOCK") if e["action"] == "lock.access_revoked"]
    assert len(revoked) == 1 and revoked[0]["before"]["principal_id"] == entry_before["objectId"]
    assert {r["environment_id"]: r["status"] for r in result["rows"]} == dict.fromkeys(
        EU_POLICY_ENVS, "offline"
    )

    mark = linked.control.last_seq()
    again = lock(**args, return_state=True)  # approved and revoked already: verifies only
    assert again.is_completed(), again.message
    assert writes_since(linked, mark) == []

    unlock_args = {"change_id": "CHG-UNLOCK", "requested_by": "alice", "lock_change_id": "CHG-LOCK"}
    approver("unlock", [APPROVE_UNLOCK])
    state = unlock(**unlock_args, return_state=True)
    assert state.is_completed(), state.message
    assert runtime(linked) == before
    restored = policy_identity_entry(linked, "ep-cmk-eu")
    assert restored is not None
    assert sorted(restored["permissions"]["keys"]) == sorted(entry_before["permissions"]["keys"])
    assert {r["environment_id"]: r["status"] for r in state.result()["rows"]} == dict.fromkeys(
        EU_POLICY_ENVS, "succeeded"
    )
    enables = [
        r for r in linked.control.requests(since=mark, service="bap", method="POST") if "/enable" in r["path"]
    ]
    assert sorted(r["target"] for r in enables) == sorted(EU_POLICY_ENVS)

    mark = linked.control.last_seq()
    assert unlock(**unlock_args, return_state=True).is_completed()
    assert writes_since(linked, mark) == []
    relock = lock(**args, return_state=True)  # a lock undone by unlock is never replayed
    assert relock.is_failed() and "CHG-UNLOCK" in relock.message
    assert writes_since(linked, mark) == []


def test_lock_by_role_assignment_on_an_rbac_vault_and_unlock(linked: RunningSimulator, approver: Any) -> None:
    before = runtime(linked)
    approver("lock", [approve("carol", "ep-cmk-us"), approve("dave", "ep-cmk-us")])
    state = lock(change_id="CHG-LOCK-US", requested_by="alice", policy_id=US_POLICY, return_state=True)
    assert state.is_completed(), state.message
    assert [g["method"] for g in state.result()["revoked"]] == ["role_assignment"]
    assert {e for e, r in runtime(linked).items() if r == "Disabled"} == set(US_POLICY_ENVS)

    approver("unlock", [APPROVE_UNLOCK])
    state = unlock(
        change_id="CHG-UNLOCK-US", requested_by="alice", lock_change_id="CHG-LOCK-US", return_state=True
    )
    assert state.is_completed(), state.message
    assert runtime(linked) == before
    principal = next(
        p for p in linked.control.state()["arm"]["enterprise_policies"] if p["name"] == "ep-cmk-us"
    )["identity"]["principalId"]
    roles = [
        a
        for a in linked.control.state()["arm"]["role_assignments"]
        if a["properties"]["principalId"] == principal
    ]
    assert any(
        a["properties"]["roleDefinitionId"].endswith("e147488a-f6f5-4113-8e2d-b22465e65bf6") for a in roles
    )


def test_unlock_without_a_recorded_lock_is_refused_before_any_write(linked: RunningSimulator) -> None:
    since = linked.control.last_seq()
    state = unlock(
        change_id="CHG-UNLOCK-NONE", requested_by="alice", lock_change_id="CHG-NEVER", return_state=True
    )
    assert state.is_failed()
    assert "no revoked access recorded" in state.message or "has no revoked access" in state.message
    assert writes_since(linked, since) == []


def test_lock_by_disabling_a_shared_key_takes_every_dependent_policy_offline_and_unlock_restores_it(
    linked: RunningSimulator, approver: Any
) -> None:
    before = runtime(linked)
    approver("lock", [approve("carol", "ep-cmk-eu-other"), approve("dave", "ep-cmk-eu-other")])
    state = lock(
        change_id="CHG-LOCK-KEY",
        requested_by="alice",
        policy_id=OTHER_POLICY,
        method="disable_key",
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert [g["method"] for g in state.result()["revoked"]] == ["disable_key"]
    offline = {e for e, r in runtime(linked).items() if r == "Disabled"}
    assert offline == set(OTHER_POLICY_ENVS) | set(EU_POLICY_ENVS)  # the same key: both policies go down
    assert demo_key_enabled(linked) is False
    assert policy_identity_entry(linked, "ep-cmk-eu-other") is not None  # access itself was not touched

    approver("unlock", [APPROVE_UNLOCK])
    state = unlock(
        change_id="CHG-UNLOCK-KEY", requested_by="alice", lock_change_id="CHG-LOCK-KEY", return_state=True
    )
    assert state.is_completed(), state.message
    assert runtime(linked) == before  # both policies' environments are back online
    assert demo_key_enabled(linked) is True
    rows = {r["environment_id"]: r for r in state.result()["rows"]}
    assert {rows[e]["policy"] for e in EU_POLICY_ENVS} == {"ep-cmk-eu"}
