"""Network-protected vaults on an onboarded tenant: rotate and unlock refuse before any write while the vault's
network keeps Power Platform out, the inventory finds it as a high risk, and the simulator locks the policy's
environments as the real service does (and lets them back after the trusted-services bypass is restored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmk.clients.arm import ArmService
from cmk.clients.powerplatform import PowerPlatformService
from cmk.clients.settings import settings_from_simulator
from flows.inventory import inventory
from flows.lock import lock
from flows.rotate import rotate
from flows.unlock import unlock
from simulator.testing import RunningSimulator
from tests.flows.linked_scenario import (
    DEMO_VAULT,
    EU_POLICY,
    EU_POLICY_ENVS,
    OTHER_POLICY_ENVS,
    US_POLICY,
    US_POLICY_ENVS,
    environments,
    prepare_linked_env,
    start_linked_sim,
    writes_since,
)
from tests.support import set_vault_network

linked_sim = pytest.fixture(scope="module")(start_linked_sim)
BLOCKS = "VAULT_NETWORK_BLOCKS_SERVICE"
CUT_OFF = {"public_network_access": "Disabled", "network_acls": {"bypass": "None", "defaultAction": "Deny"}}
TRUSTED = {
    "public_network_access": "Disabled",
    "network_acls": {"bypass": "AzureServices", "defaultAction": "Deny"},
}


@pytest.fixture
def linked(prefect_server: None, linked_sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    """The linked scenario, reset, with fast operations and the default blocks pointing at it."""
    yield from prepare_linked_env(linked_sim, tmp_path)


@pytest.fixture
def no_lock_detection(linked: RunningSimulator) -> RunningSimulator:
    """The linked tenant where an unhealthy policy does not lock its environments during the test."""
    linked.control.settings(lock_detection_seconds=86400)
    return linked


def runtime(sim: RunningSimulator) -> dict[str, str]:
    """Environment id -> Enabled/Disabled."""
    return {env_id: e["runtime"] for env_id, e in environments(sim).items()}


def test_rotate_is_refused_before_any_write_and_passes_with_the_bypass(
    no_lock_detection: RunningSimulator,
) -> None:
    sim = no_lock_detection
    set_vault_network(sim.endpoints, "kv-cmk-demo", **CUT_OFF)
    since = sim.control.last_seq()
    state = rotate(policy_id=EU_POLICY, change_id="CHG-NET-ROT", requested_by="alice", return_state=True)
    assert state.is_failed()
    assert f"{BLOCKS} on {DEMO_VAULT}" in state.message
    assert sim.control.requests(since=since, service="arm", method="GET")  # it did read
    assert writes_since(sim, since) == []

    set_vault_network(sim.endpoints, "kv-cmk-demo", **TRUSTED)
    since = sim.control.last_seq()
    state = rotate(
        policy_id=EU_POLICY, change_id="CHG-NET-ROT-OK", requested_by="alice", dry_run=True, return_state=True
    )
    assert state.is_completed(), state.message
    assert writes_since(sim, since) == []


def test_the_inventory_finds_the_cut_off_vault_as_a_high_risk(no_lock_detection: RunningSimulator) -> None:
    sim = no_lock_detection
    set_vault_network(sim.endpoints, "kv-cmk-demo", **CUT_OFF)
    since = sim.control.last_seq()
    result = inventory(return_state=True).result()
    assert writes_since(sim, since) == []
    cut = [r for r in result["risks"] if r["code"] == "vault-network-blocks-service"]
    assert cut and {r["severity"] for r in cut} == {"high"}
    assert {r["target"].lower() for r in cut} == {DEMO_VAULT.lower()}
    assert "--bypass AzureServices" in cut[0]["remediation"]

    set_vault_network(sim.endpoints, "kv-cmk-demo", **TRUSTED)
    result = inventory(return_state=True).result()
    assert not [r for r in result["risks"] if r["code"].startswith("vault-network")]


def test_unlock_is_refused_before_any_write_while_the_network_keeps_the_service_out(
    linked: RunningSimulator, approver: Any
) -> None:
    confirm = {
        "approver": "carol",
        "decision": "approve",
        "change_ticket": "CHG0101",
        "typed_confirmation": "ep-cmk-eu",
    }
    approver("lock", [confirm, {**confirm, "approver": "dave"}])
    locked = lock(
        change_id="CHG-NET-LOCK",
        requested_by="alice",
        policy_id=EU_POLICY,
        lock_timeout_seconds=60,
        return_state=True,
    )
    assert locked.is_completed(), locked.message
    set_vault_network(linked.endpoints, "kv-cmk-demo", **CUT_OFF)
    since = linked.control.last_seq()
    state = unlock(
        change_id="CHG-NET-UNLOCK", requested_by="alice", lock_change_id="CHG-NET-LOCK", return_state=True
    )
    assert state.is_failed()
    assert f"{BLOCKS} on {DEMO_VAULT}" in state.message
    assert writes_since(linked, since) == []
    assert {runtime(linked)[e] for e in EU_POLICY_ENVS} == {"Disabled"}

    set_vault_network(linked.endpoints, "kv-cmk-demo", **TRUSTED)
    state = unlock(
        change_id="CHG-NET-UNLOCK-2",
        requested_by="alice",
        lock_change_id="CHG-NET-LOCK",
        dry_run=True,
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert state.result()["writes"]  # the access and the environments it would bring back


def test_cutting_the_service_off_locks_the_policy_and_the_bypass_brings_it_back(
    linked: RunningSimulator,
) -> None:
    azure, pp = settings_from_simulator(linked.endpoints)
    with ArmService(azure) as arm, PowerPlatformService(pp) as bap:
        assert arm.get_policy(EU_POLICY).health == "Healthy"
        set_vault_network(
            linked.endpoints, "kv-cmk-demo", network_acls={"bypass": "None", "defaultAction": "Deny"}
        )
        assert arm.get_policy(EU_POLICY).health == "Unhealthy"
        assert runtime(linked)[EU_POLICY_ENVS[0]] == "Enabled"  # not before the lock-detection delay
        linked.control.advance(2)  # lock_detection_seconds is 1
        offline = runtime(linked)
        # every policy on the vault is cut off, the one on another vault is not
        assert {offline[e] for e in EU_POLICY_ENVS + OTHER_POLICY_ENVS} == {"Disabled"}
        assert {offline[e] for e in US_POLICY_ENVS} == {"Enabled"}
        assert arm.get_policy(US_POLICY).health == "Healthy"

        set_vault_network(
            linked.endpoints, "kv-cmk-demo", network_acls={"bypass": "AzureServices", "defaultAction": "Deny"}
        )
        assert arm.get_policy(EU_POLICY).health == "Healthy"
        assert runtime(linked)[EU_POLICY_ENVS[0]] == "Disabled"  # restoring access does not re-enable
        for env_id in EU_POLICY_ENVS:
            status = bap.wait(bap.reenable_environment(env_id), 30)
            assert status.succeeded, status
        assert {runtime(linked)[e] for e in EU_POLICY_ENVS} == {"Enabled"}
