"""Onboarding writes nothing before approval: not when rejected, not when the approval expires, not in a dry run,
and not when a parameter is malformed (then not even a read reaches the services)."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.input.actions import read_flow_run_input

from flows.onboard import onboard
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows.test_onboard import artifacts_of, link_posts, params, writes_since

ONE = [EUROPE_ELIGIBLE[0], EUROPE_ELIGIBLE[1]]
REJECT = {"approver": "bob", "decision": "reject", "comment": "not during quarter close"}


def assert_untouched(sim: RunningSimulator, since: int) -> None:
    """No write request since the mark; no key, no policy, provider still unregistered, nothing linked."""
    assert writes_since(sim, since) == []
    state = sim.control.state()
    assert state["keyvault"]["kv-cmk-demo"]["keys"] == {}
    assert state["arm"]["enterprise_policies"] == []
    assert state["arm"]["providers"]["Microsoft.PowerPlatform"] != "Registered"
    assert link_posts(sim, since) == {}


def test_rejection_writes_nothing_and_the_form_showed_every_planned_write(
    flow_env: RunningSimulator, approver: Any
) -> None:
    since = flow_env.control.last_seq()
    approver("onboard", [REJECT])
    state = onboard(**params(flow_env, "CHG-NW-REJECT", environments=ONE), return_state=True)
    assert state.is_cancelled(), state.message
    assert "not during quarter close" in state.message
    assert_untouched(flow_env, since)
    assert writes_since(flow_env, 0) == []  # nothing at all was ever written in this tenant
    run_id = state.state_details.flow_run_id
    assert "Nothing was changed" in artifacts_of(run_id)["onboard-summary"].data

    form = read_flow_run_input("paused-onboard-1-description", run_id)
    writes = form[form.index("### Planned writes") : form.index("### Environments")]
    assert "1. register provider `Microsoft.PowerPlatform`" in writes
    assert "create key `" in writes and "/keys/pp-cmk-key`" in writes
    assert "deploy enterprise policy `" in writes
    assert "enterprisePolicies/ep-cmk-eu`" in writes
    assert "grant key access `" in writes and "grant Reader `" in writes
    for env_id in ONE:
        assert f"link `{env_id}`" in writes
    order = [
        writes.index(a) for a in ("register provider", "create key", "deploy", "grant key", "grant Reader")
    ]
    assert order == sorted(order)
    assert "systemId and managed identity do not exist yet" in form
    assert "Nothing has been written yet" in form


def test_expired_approval_writes_nothing(flow_env: RunningSimulator) -> None:
    from blocks.approval import ApprovalSettings

    ApprovalSettings(timeout_seconds=5, poll_interval_seconds=1).save("short-approvals", overwrite=True)
    since = flow_env.control.last_seq()
    state = onboard(
        **params(flow_env, "CHG-NW-EXPIRE", environments=ONE, approval_settings="short-approvals"),
        return_state=True,
    )
    assert state.is_failed()
    assert_untouched(flow_env, since)
    summary = artifacts_of(state.state_details.flow_run_id)["onboard-summary"].data
    assert "expired" in summary and "Nothing was changed" in summary


def test_dry_run_writes_nothing_and_reports_the_plan(flow_env: RunningSimulator) -> None:
    since = flow_env.control.last_seq()
    state = onboard(**params(flow_env, "CHG-NW-DRY", dry_run=True), return_state=True)
    assert state.is_completed(), state.message
    assert_untouched(flow_env, since)
    result = state.result()
    assert result["dry_run"] and result["planned"] == list(EUROPE_ELIGIBLE)
    actions = [line.split(" `")[0] for line in result["writes"]]
    assert actions == [
        "register provider",
        "create key",
        "set key rotation policy",
        "deploy enterprise policy",
        "grant key access",
        "grant Reader",
    ] + ["link"] * len(EUROPE_ELIGIBLE)
    summary = artifacts_of(state.state_details.flow_run_id)["onboard-summary"].data
    assert "Dry run: nothing was changed." in summary and "### Planned writes" in summary


@pytest.mark.parametrize(
    ("override", "rule"),
    [
        ({"key_name": "my key"}, "is not a Key Vault key name"),
        ({"key_name": "key!"}, "is not a Key Vault key name"),
        ({"policy_name": "ep-ü"}, "is not a valid enterprise policy name"),
        ({"policy_name": "ep cmk"}, "is not a valid enterprise policy name"),
        ({"resource_group": "rg."}, "is not a resource group name"),
        ({"location": "westeurope"}, "is not a Power Platform geo"),
        ({"environments": ["not-a-guid"]}, "are not environment ids"),
        ({"operation_timeout_seconds": 0}, "operation_timeout_seconds must be more than 0"),
        ({"operation_timeout_seconds": -10}, "operation_timeout_seconds must be more than 0"),
        ({"concurrency": 0}, "concurrency must be a whole number from 1 to 32"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else "-".join(f"{k}={v[k]}" for k in v),
)
def test_a_malformed_parameter_fails_before_any_request(
    flow_env: RunningSimulator, override: dict[str, Any], rule: str
) -> None:
    change_id = "CHG-NW-BAD"
    since = flow_env.control.last_seq()
    state = onboard(**params(flow_env, change_id, **override), return_state=True)
    assert state.is_failed()
    assert rule in state.message and "InvalidParameterError" in state.message
    assert flow_env.control.last_seq() == since  # not a single request, not even a token or a GET
