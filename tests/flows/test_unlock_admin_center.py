"""Unlock as against real Azure (no undocumented re-enable): restore access, wait Healthy, hand the admin a checklist,
verify on re-run. The simulator's stand-in endpoint plays the admin center between the two runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blocks import DEFAULT_POWERPLATFORM_BLOCK
from blocks.connections import PowerPlatformAdminConnection
from cmk.clients.powerplatform import PowerPlatformService
from cmk.clients.settings import settings_from_simulator
from cmk.errors import PreconditionFailedError
from flows.lock import lock
from flows.unlock import unlock
from simulator.testing import RunningSimulator
from tests.flows.linked_scenario import EU_POLICY, EU_POLICY_ENVS, prepare_linked_env, start_linked_sim
from tests.flows.test_lock_unlock import APPROVE_UNLOCK, approve, runtime
from tests.flows.test_onboard import artifacts_of

linked_sim = pytest.fixture(scope="module")(start_linked_sim)
DOCUMENTED = "pp-documented-only"


@pytest.fixture
def linked(prefect_server: None, linked_sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    yield from prepare_linked_env(linked_sim, tmp_path)


def documented_only_block() -> str:
    """The simulator's Power Platform connection as real Azure would be configured: no undocumented re-enable."""
    block = PowerPlatformAdminConnection.load(DEFAULT_POWERPLATFORM_BLOCK)
    block.undocumented_reenable = False
    block.save(DOCUMENTED, overwrite=True)
    return DOCUMENTED


def enable_posts(sim: RunningSimulator, since: int) -> list[dict[str, Any]]:
    return [
        r for r in sim.control.requests(since=since, service="bap", method="POST") if "/enable" in r["path"]
    ]


def test_the_client_never_calls_the_stand_in_endpoint_by_default(linked: RunningSimulator) -> None:
    _, settings = settings_from_simulator(linked.endpoints)
    assert settings.undocumented_reenable is True
    assert PowerPlatformAdminConnection.model_fields["undocumented_reenable"].default is False
    since = linked.control.last_seq()
    with PowerPlatformService(settings.model_copy(update={"undocumented_reenable": False})) as pp:
        with pytest.raises(PreconditionFailedError, match="no documented API"):
            pp.reenable_environment(EU_POLICY_ENVS[0])
    assert enable_posts(linked, since) == []


def test_unlock_without_the_stand_in_ends_with_a_checklist_and_a_rerun_verifies(
    linked: RunningSimulator, approver: Any
) -> None:
    before = runtime(linked)
    approver("lock", [approve("carol"), approve("dave")])
    locked = lock(change_id="CHG-LOCK-AC", requested_by="alice", policy_id=EU_POLICY, lock_timeout_seconds=60)
    assert locked["policy_health"] == "Unhealthy"

    args = {
        "change_id": "CHG-UNLOCK-AC",
        "requested_by": "alice",
        "lock_change_id": "CHG-LOCK-AC",
        "powerplatform_connection": documented_only_block(),
    }
    mark = linked.control.last_seq()
    approver("unlock", [APPROVE_UNLOCK])
    state = unlock(**args, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["policy_health"] == "Healthy"
    assert sorted(result["admin_center"]) == sorted(EU_POLICY_ENVS)
    assert {r["status"] for r in result["rows"]} == {"admin-center"}
    assert enable_posts(linked, mark) == []  # nothing undocumented was called
    assert {e for e, r in runtime(linked).items() if r == "Disabled"} == set(EU_POLICY_ENVS)
    artifacts = artifacts_of(state.state_details.flow_run_id)
    checklist = artifacts["unlock-checklist"].data
    assert all(f"`{env_id}`" in checklist for env_id in EU_POLICY_ENVS)
    assert "Re-enable environment" in checklist and "CHG-UNLOCK-AC" in checklist
    assert "admin center" in artifacts["unlock-summary"].data

    # The admin re-enables each environment in the admin center (here: the simulator's stand-in endpoint).
    _, sim_settings = settings_from_simulator(linked.endpoints)
    with PowerPlatformService(sim_settings) as pp:
        for env_id in EU_POLICY_ENVS:
            pp.wait(pp.reenable_environment(env_id), 60)
    assert runtime(linked) == before

    mark = linked.control.last_seq()
    again = unlock(**args, return_state=True)
    assert again.is_completed(), again.message
    rerun = again.result()
    assert rerun["admin_center"] == []
    assert {r["environment_id"]: r["status"] for r in rerun["rows"]} == dict.fromkeys(
        EU_POLICY_ENVS, "already-done"
    )
    assert enable_posts(linked, mark) == []


def test_a_rerun_before_the_admin_acted_still_lists_the_environment(
    linked: RunningSimulator, approver: Any
) -> None:
    approver("lock", [approve("carol"), approve("dave")])
    lock(change_id="CHG-LOCK-AC2", requested_by="alice", policy_id=EU_POLICY, lock_timeout_seconds=60)
    args = {
        "change_id": "CHG-UNLOCK-AC2",
        "requested_by": "alice",
        "lock_change_id": "CHG-LOCK-AC2",
        "powerplatform_connection": documented_only_block(),
    }
    approver("unlock", [APPROVE_UNLOCK])
    assert unlock(**args, return_state=True).is_completed()
    again = unlock(**args, return_state=True)
    assert again.is_completed(), again.message
    assert sorted(again.result()["admin_center"]) == sorted(EU_POLICY_ENVS)
