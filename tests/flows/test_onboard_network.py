"""Onboarding onto a network-protected vault: refused before any write without the trusted-services bypass,
planned with an info finding when the bypass is on (private endpoint included)."""

from __future__ import annotations

from flows.onboard import onboard
from simulator.testing import RunningSimulator
from tests.flows.conftest import demo_vault_id
from tests.flows.test_onboard import artifacts_of, params, writes_since
from tests.flows.test_onboard_no_writes import ONE, assert_untouched
from tests.support import set_vault_network


def test_onboarding_is_refused_before_any_write_when_the_vault_shuts_the_service_out(
    flow_env: RunningSimulator,
) -> None:
    set_vault_network(
        flow_env.endpoints, "kv-cmk-demo", public_network_access="Disabled", network_acls={"bypass": "None"}
    )
    since = flow_env.control.last_seq()
    state = onboard(**params(flow_env, "CHG-NET-ONB", environments=ONE), return_state=True)
    assert state.is_failed()
    assert f"VAULT_NETWORK_BLOCKS_SERVICE on {demo_vault_id(flow_env)}" in state.message
    assert flow_env.control.requests(since=since, service="arm", method="GET")  # it read the vault
    assert_untouched(flow_env, since)
    summary = artifacts_of(state.state_details.flow_run_id)["onboard-summary"].data
    assert "Stopped before any change" in summary and "--bypass AzureServices" in summary


def test_onboarding_a_private_vault_with_the_bypass_is_planned(flow_env: RunningSimulator) -> None:
    set_vault_network(
        flow_env.endpoints,
        "kv-cmk-demo",
        public_network_access="Disabled",
        network_acls={"bypass": "AzureServices", "defaultAction": "Deny"},
        private_endpoint="pe-kv-cmk-demo",
    )
    since = flow_env.control.last_seq()
    state = onboard(**params(flow_env, "CHG-NET-ONB-OK", environments=ONE, dry_run=True), return_state=True)
    assert state.is_completed(), state.message
    assert writes_since(flow_env, since) == []
    assert state.result()["planned"] == ONE
    summary = artifacts_of(state.state_details.flow_run_id)["onboard-summary"].data
    assert "VAULT_NETWORK_TRUSTED_BYPASS" in summary and "1 private endpoint connection(s)" in summary
