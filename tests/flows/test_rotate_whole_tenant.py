"""Policy swap of the whole tenant: every CMK environment in the geo moves, whatever its policy; others stay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.rotate import rotate
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator, running_simulator
from tests.flows.rotation_support import (
    APPROVE,
    OLD_KEY,
    lifecycle_posts,
    linked_system_ids,
    policy_id,
    rotation_scenario,
    system_id,
)
from tests.support import ready_for_flows

SECOND_EU_POLICY = "ep-cmk-eu-b"
US_POLICY = "ep-cmk-us"
US_OPERATIONS = "c0de0e4a-7c2b-4e5f-9a10-0000000a0001"


def two_policy_scenario() -> dict[str, Any]:
    """The onboarded tenant plus a second europe policy holding one environment, and a US policy with one."""
    scenario = rotation_scenario()
    base = scenario["enterprise_policies"][0]
    scenario["enterprise_policies"] += [
        {**base, "name": SECOND_EU_POLICY},
        {**base, "name": US_POLICY, "location": "unitedstates"},
    ]
    for env in scenario["environments"]:
        if env["id"] == EUROPE_ELIGIBLE[0]:
            env["policy"] = SECOND_EU_POLICY
        if env["id"] == US_OPERATIONS:
            env.update(encryption="cmk", policy=US_POLICY)
    return scenario


@pytest.fixture(scope="module")
def tenant_sim() -> Iterator[RunningSimulator]:
    """A simulator of its own for this module."""
    with running_simulator(two_policy_scenario()) as running:
        yield running


@pytest.fixture
def tenant(prefect_server: None, tenant_sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    """The scenario reset, with fast operations and the default blocks pointing at it."""
    with ready_for_flows(tenant_sim, tmp_path, link_seconds=1, unlink_seconds=1) as sim:
        yield sim


def test_whole_tenant_moves_every_cmk_environment_of_the_geo_and_nothing_else(
    tenant: RunningSimulator, approver: Any
) -> None:
    us_before = linked_system_ids(tenant)[US_OPERATIONS]
    approver("rotate", [APPROVE])
    state = rotate(
        change_id="CHG-TENANT",
        requested_by="alice",
        policy_id=policy_id(tenant),
        mode="policy-swap",
        new_policy_name="ep-cmk-eu-new",
        new_key_name=f"{OLD_KEY}-new",
        whole_tenant=True,
        return_state=True,
    )
    assert state.is_completed(), state.message
    new_sid = system_id(tenant, "ep-cmk-eu-new")
    linked = linked_system_ids(tenant)
    assert {env_id: linked[env_id] for env_id in EUROPE_ELIGIBLE} == dict.fromkeys(EUROPE_ELIGIBLE, new_sid)
    assert linked[US_OPERATIONS] == us_before  # another geo: untouched
    assert lifecycle_posts(tenant, "link") == dict.fromkeys(EUROPE_ELIGIBLE, 1)
    rows = {r["environment_id"]: r for r in state.result()["rows"]}
    assert rows[EUROPE_ELIGIBLE[0]]["policy_before"].lower() == policy_id(tenant, SECOND_EU_POLICY).lower()
