"""The simulator core: endpoints, token endpoint, error envelope, auth, control plane."""

from __future__ import annotations

import httpx

from simulator.testing import RunningSimulator
from tests.support import mi_credential


def test_endpoints_have_the_contract_fields(sim: RunningSimulator) -> None:
    for field in (
        "arm",
        "bap",
        "token",
        "control",
        "ca_bundle",
        "tenant_id",
        "subscription_id",
        "identity_header",
    ):
        assert sim.endpoints[field]
    assert {"keyvault-admin", "powerplatform-admin"} <= set(sim.endpoints["identities"])


def test_unknown_route_uses_the_error_envelope(fresh_sim: RunningSimulator) -> None:
    token = mi_credential(fresh_sim.endpoints, "keyvault-admin").get_token(
        "https://management.azure.com/.default"
    )
    response = httpx.get(
        fresh_sim.endpoints["arm"] + "/nothing/here?api-version=1",
        headers={"Authorization": f"Bearer {token.token}"},
        verify=fresh_sim.ca_bundle,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


def test_missing_token_is_401_and_logged_without_caller(fresh_sim: RunningSimulator) -> None:
    since = fresh_sim.control.last_seq()
    response = httpx.get(fresh_sim.endpoints["arm"] + "/subscriptions", verify=fresh_sim.ca_bundle)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    logged = fresh_sim.control.requests(since=since, service="arm")
    assert logged[-1]["status"] == 401 and logged[-1]["caller"] is None


def test_token_endpoint_refuses_a_wrong_identity_header(sim: RunningSimulator) -> None:
    response = httpx.get(
        sim.endpoints["token"],
        params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
        headers={"X-IDENTITY-HEADER": "wrong"},
        verify=sim.ca_bundle,
    )
    assert response.status_code == 401


def test_wrong_audience_is_refused(fresh_sim: RunningSimulator) -> None:
    token = mi_credential(fresh_sim.endpoints, "keyvault-admin").get_token("https://vault.azure.net/.default")
    response = httpx.get(
        fresh_sim.endpoints["arm"] + "/subscriptions?api-version=2022-12-01",
        headers={"Authorization": f"Bearer {token.token}"},
        verify=fresh_sim.ca_bundle,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_fault_rule_fires_count_times(fresh_sim: RunningSimulator) -> None:
    fresh_sim.control.add_fault(service="identity", status=503, code="ServiceUnavailable", count=1)
    params = {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
    headers = {"X-IDENTITY-HEADER": fresh_sim.endpoints["identity_header"]}
    first = httpx.get(
        fresh_sim.endpoints["token"], params=params, headers=headers, verify=fresh_sim.ca_bundle
    )
    second = httpx.get(
        fresh_sim.endpoints["token"], params=params, headers=headers, verify=fresh_sim.ca_bundle
    )
    assert (first.status_code, second.status_code) == (503, 200)
    assert fresh_sim.control.faults()[0]["hits"] == 1


def test_time_can_be_advanced_and_scaled(fresh_sim: RunningSimulator) -> None:
    before = fresh_sim.control.now()
    after = fresh_sim.control.advance(86400)
    assert after - before >= 86400
    fresh_sim.control.set_scale(10)
    assert fresh_sim.control.state()["clock_scale"] == 10
