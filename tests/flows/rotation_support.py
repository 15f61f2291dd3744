"""Fixtures for the rotation flow tests: the demo tenant with its europe environments already on a CMK policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.scenarios.demo import EUROPE_ELIGIBLE, build_demo
from simulator.testing import RunningSimulator, running_simulator
from tests.support import ready_for_flows

OLD_POLICY = "ep-cmk-eu"
OLD_KEY = "pp-cmk-key"
APPROVE = {"approver": "carol", "decision": "approve", "change_ticket": "CHG0042"}


def rotation_scenario() -> dict[str, Any]:
    """The demo tenant after onboarding: key, policy with grants, the four eligible europe environments linked."""
    scenario = build_demo()
    scenario["name"] = "demo-onboarded"
    scenario["providers"] = {"Microsoft.PowerPlatform": "Registered"}
    scenario["vaults"][0]["keys"] = [{"name": OLD_KEY, "kty": "RSA", "size": 2048}]
    scenario["enterprise_policies"] = [
        {
            "name": OLD_POLICY,
            "resource_group": "rg-cmk",
            "location": "europe",
            "vault": "kv-cmk-demo",
            "key": OLD_KEY,
            "grant": "access_policy",
            "reader_for": ["powerplatform-admin"],
        }
    ]
    for env in scenario["environments"]:
        if env["id"] in EUROPE_ELIGIBLE:
            env["encryption"] = "cmk"
            env["policy"] = OLD_POLICY
    return scenario


@pytest.fixture(scope="module")
def onboarded_sim() -> Iterator[RunningSimulator]:
    """A simulator of its own for this module, seeded with the onboarded demo tenant."""
    with running_simulator(rotation_scenario()) as running:
        yield running


@pytest.fixture
def rotation_env(
    prefect_server: None, onboarded_sim: RunningSimulator, tmp_path: Path
) -> Iterator[RunningSimulator]:
    """The onboarded tenant reset, fast operations, fresh state and report dirs, default blocks pointing at it."""
    onboarded_sim.control.clear_faults()
    with ready_for_flows(
        onboarded_sim, tmp_path, link_seconds=1, unlink_seconds=1, operation_retry_after=1
    ) as sim:
        yield sim


def policy_id(sim: RunningSimulator, name: str = OLD_POLICY) -> str:
    """ARM id of an enterprise policy in rg-cmk."""
    return (
        f"/subscriptions/{sim.endpoints['subscription_id']}/resourceGroups/rg-cmk"
        f"/providers/Microsoft.PowerPlatform/enterprisePolicies/{name}"
    )


def system_id(sim: RunningSimulator, name: str) -> str:
    """The systemId (lower-case) of the enterprise policy with this name."""
    for policy in sim.control.state()["arm"]["enterprise_policies"]:
        if policy["name"].lower() == name.lower():
            return policy["properties"]["systemId"].lower()
    raise AssertionError(f"no enterprise policy {name}")


def linked_system_ids(sim: RunningSimulator) -> dict[str, str]:
    """Environment id -> the systemId (lower-case) of the policy it is on, for CMK environments."""
    envs = sim.control.state()["bap"]["environments"]
    return {k: (v["policy_system_id"] or "").lower() for k, v in envs.items() if v["encryption"] == "cmk"}


def lifecycle_posts(sim: RunningSimulator, kind: str, since: int = 0) -> dict[str, int]:
    """How many link (or unlink) POSTs each environment received."""
    counts: dict[str, int] = {}
    for r in sim.control.requests(since=since, service="bap", method="POST"):
        path = r["path"].split("?", 1)[0]
        if path.lower().endswith(f"/encryption/{kind}"):
            # from the path: a request answered by a fault rule has no target in the log
            env_id = path.split("/environments/", 1)[1].split("/", 1)[0]
            counts[env_id] = counts.get(env_id, 0) + 1
    return counts
