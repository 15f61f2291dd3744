"""The retire flow: refused inside the grace period or while environments depend on the old policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cmk.domain import grace
from flows.retire import retire
from flows.rotate import rotate
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows import rotation_support
from tests.flows.rotation_support import APPROVE, policy_id

onboarded_sim = rotation_support.onboarded_sim
rotation_env = rotation_support.rotation_env

WRITES = {"PUT", "POST", "PATCH", "DELETE"}


def writes_since(sim: RunningSimulator, since: int) -> list[dict[str, Any]]:
    """Mutating requests to ARM, Key Vault or BAP since a request-log mark."""
    return [
        r
        for r in sim.control.requests(since=since)
        if r["method"] in WRITES and r["service"] in {"arm", "keyvault", "bap"}
    ]


def key_versions(sim: RunningSimulator) -> dict[str, bool]:
    """Version -> enabled, for the demo key."""
    key = sim.control.state()["keyvault"]["kv-cmk-demo"]["keys"]["pp-cmk-key"]
    return {v["version"]: v["enabled"] for v in key["versions"]}


def test_key_version_retirement_waits_for_the_grace_period(
    rotation_env: RunningSimulator, approver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    approver("rotate", [APPROVE])
    rotated = rotate(policy_id=policy_id(rotation_env), change_id="CHG-ROT", requested_by="alice")
    previous = rotated["previous_version"]

    since = rotation_env.control.last_seq()
    refused = retire(change_id="CHG-RET-1", requested_by="alice", return_state=True)
    assert refused.is_failed() and "grace period runs until" in refused.message
    # the service's clock moving on does not shorten our grace: it is measured in real dates
    rotation_env.control.advance(29 * 86400)
    again = retire(change_id="CHG-RET-2", requested_by="alice", return_state=True)
    assert again.is_failed() and "grace period runs until" in again.message
    assert writes_since(rotation_env, since) == []
    assert key_versions(rotation_env)[previous] is True

    later = grace.utc_now() + timedelta(days=28, minutes=1)
    monkeypatch.setattr(grace, "utc_now", lambda: later)
    dry = retire(change_id="CHG-RET-3", requested_by="alice", dry_run=True)
    assert [i["status"] for i in dry["items"]] == ["ready"]
    assert writes_since(rotation_env, since) == []
    approver("retire", [APPROVE])
    done = retire(change_id="CHG-RET-4", requested_by="alice", return_state=True)
    assert done.is_completed(), done.message
    versions = key_versions(rotation_env)
    assert versions[previous] is False
    assert versions[rotated["new_version"]] is True
    envs = rotation_env.control.state()["bap"]["environments"]
    assert all(envs[e]["runtime"] == "Enabled" and not envs[e]["locked"] for e in EUROPE_ELIGIBLE)


def test_policy_retirement_is_refused_while_environments_depend_on_it(
    rotation_env: RunningSimulator, approver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    approver("rotate", [APPROVE])
    rotate(
        policy_id=policy_id(rotation_env),
        change_id="CHG-PART",
        requested_by="alice",
        mode="policy-swap",
        new_policy_name="ep-cmk-eu-2",
        new_key_name="pp-cmk-key-2",
        environments=[EUROPE_ELIGIBLE[0]],
    )
    later = grace.utc_now() + timedelta(days=31)
    monkeypatch.setattr(grace, "utc_now", lambda: later)
    since = rotation_env.control.last_seq()
    state = retire(change_id="CHG-RET-P", requested_by="alice", return_state=True)
    assert state.is_failed()
    assert "3 environment(s) still depend on it" in state.message
    assert writes_since(rotation_env, since) == []
    names = {p["name"] for p in rotation_env.control.state()["arm"]["enterprise_policies"]}
    assert {"ep-cmk-eu", "ep-cmk-eu-2"} <= names


def test_policy_retirement_after_the_grace_deletes_the_old_policy_and_its_access(
    rotation_env: RunningSimulator, approver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    approver("rotate", [APPROVE])
    rotate(
        policy_id=policy_id(rotation_env),
        change_id="CHG-FULL",
        requested_by="alice",
        mode="policy-swap",
        new_policy_name="ep-cmk-eu-2",
        new_key_name="pp-cmk-key-2",
    )
    policies = {p["name"]: p for p in rotation_env.control.state()["arm"]["enterprise_policies"]}
    old_principal = policies["ep-cmk-eu"]["principalIdInternal"]
    new_principal = policies["ep-cmk-eu-2"]["principalIdInternal"]
    later = grace.utc_now() + timedelta(days=30, minutes=1)
    monkeypatch.setattr(grace, "utc_now", lambda: later)
    approver("retire", [APPROVE])
    state = retire(
        change_id="CHG-RET-F", requested_by="alice", rotation_change_id="CHG-FULL", return_state=True
    )
    assert state.is_completed(), state.message
    arm = rotation_env.control.state()["arm"]
    assert {p["name"] for p in arm["enterprise_policies"]} == {"ep-cmk-eu-2"}
    [vault] = [v for v in arm["vaults"] if v["name"] == "kv-cmk-demo"]
    holders = {e["objectId"] for e in vault["properties"]["accessPolicies"]}
    assert old_principal not in holders and new_principal in holders
    envs = rotation_env.control.state()["bap"]["environments"]
    assert all(envs[e]["runtime"] == "Enabled" and not envs[e]["locked"] for e in EUROPE_ELIGIBLE)
