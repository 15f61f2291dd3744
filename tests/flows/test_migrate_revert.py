"""BYOK migration and revert to the Microsoft-managed key, under the Prefect test server, against the simulator."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.migrate_byok import migrate_byok
from flows.revert import revert
from simulator.testing import RunningSimulator
from tests.flows.linked_scenario import (
    EU_POLICY,
    EU_POLICY_ENVS,
    LEGACY_ERP,
    US_CLAIMS,
    environments,
    prepare_linked_env,
    start_linked_sim,
    writes_since,
)
from tests.flows.test_onboard import artifacts_of

linked_sim = pytest.fixture(scope="module")(start_linked_sim)
APPROVE = {"approver": "carol", "decision": "approve", "change_ticket": "CHG0077"}


@pytest.fixture
def linked(prefect_server: None, linked_sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    """The linked scenario, reset, with fast operations and the default blocks pointing at it."""
    yield from prepare_linked_env(linked_sim, tmp_path)


def encryption(sim: RunningSimulator) -> dict[str, tuple[str, str | None]]:
    """Environment id -> (encryption, linked systemId)."""
    return {k: (e["encryption"], e["policy_system_id"]) for k, e in environments(sim).items()}


def eu_system_id(sim: RunningSimulator) -> str:
    """The systemId of the ep-cmk-eu policy."""
    return next(
        p["properties"]["systemId"]
        for p in sim.control.state()["arm"]["enterprise_policies"]
        if p["name"] == "ep-cmk-eu"
    )


def test_byok_environments_are_migrated_and_verified(linked: RunningSimulator, approver: Any) -> None:
    before = encryption(linked)
    since = linked.control.last_seq()
    approver("migrate_byok", [APPROVE])
    args = {"change_id": "CHG-BYOK", "requested_by": "alice", "policy_id": EU_POLICY}
    state = migrate_byok(**args, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert [(r["environment_id"], r["status"]) for r in result["rows"]] == [(LEGACY_ERP, "succeeded")]
    after = encryption(linked)
    assert after[LEGACY_ERP] == ("cmk", eu_system_id(linked))
    assert after[US_CLAIMS] == ("byok", None)  # other geo: reported, not touched
    assert {k: v for k, v in after.items() if k != LEGACY_ERP} == {
        k: v for k, v in before.items() if k != LEGACY_ERP
    }
    links = [r["target"] for r in writes_since(linked, since)]
    assert links == [LEGACY_ERP]
    summary = artifacts_of(state.state_details.flow_run_id)["migrate-byok-summary"].data
    assert "at least 28 days" in summary and result["byok_key_kept_until"] in summary
    assert "cannot go back to BYOK" in summary

    mark = linked.control.last_seq()
    again = migrate_byok(**args, return_state=True)  # recorded plan and approval: nothing to do
    assert again.is_completed(), again.message
    assert writes_since(linked, mark) == []


def test_migration_to_a_policy_of_another_geo_is_refused_before_any_write(linked: RunningSimulator) -> None:
    since = linked.control.last_seq()
    state = migrate_byok(
        change_id="CHG-BYOK-US",
        requested_by="alice",
        policy_id=EU_POLICY,
        environments=[US_CLAIMS],
        return_state=True,
    )
    assert state.is_failed()
    assert "ENV_GEO_MISMATCH" in state.message
    assert writes_since(linked, since) == []


def test_revert_every_environment_of_a_policy(linked: RunningSimulator, approver: Any) -> None:
    before = encryption(linked)
    since = linked.control.last_seq()
    approver("revert", [APPROVE])
    args = {"change_id": "CHG-REVERT", "requested_by": "alice", "policy_id": EU_POLICY, "canary_size": 1}
    state = revert(**args, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert {r["environment_id"]: r["status"] for r in result["rows"]} == dict.fromkeys(
        EU_POLICY_ENVS, "succeeded"
    )
    assert all(r["key_managed_by_after"] == "Microsoft" for r in result["rows"])
    after = encryption(linked)
    assert all(after[e] == ("microsoft", None) for e in EU_POLICY_ENVS)
    assert {k: v for k, v in after.items() if k not in EU_POLICY_ENVS} == {
        k: v for k, v in before.items() if k not in EU_POLICY_ENVS
    }
    unlinks = sorted(r["target"] for r in writes_since(linked, since))
    assert unlinks == sorted(EU_POLICY_ENVS)
    summary = artifacts_of(state.state_details.flow_run_id)["revert-summary"].data
    assert f"Keep until {result['keep_key_until']}" in summary and "pp-cmk-key" in summary
    journal = Path(os.environ["CMK_STATE_DIR"]) / "journal.jsonl"
    kept = [
        e for e in map(json.loads, journal.read_text().splitlines()) if e["action"] == "revert.keep_key_until"
    ]
    assert [e["after"]["keep_until"] for e in kept] == [result["keep_key_until"]]
    # The policy, its key and its access stay: the key must remain usable for 30 days.
    arm = linked.control.state()["arm"]
    assert "ep-cmk-eu" in {p["name"] for p in arm["enterprise_policies"]}

    mark = linked.control.last_seq()
    again = revert(**args, return_state=True)
    assert again.is_completed(), again.message
    assert writes_since(linked, mark) == []
