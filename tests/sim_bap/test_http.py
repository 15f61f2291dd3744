"""The simulated BAP over HTTPS with httpx: routes, link rules, operations, lock, re-enable, paging, 429."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator.scenarios.demo import BYOK_ENVIRONMENTS, DEMO_ENVIRONMENTS, EUROPE_ELIGIBLE, build_demo
from simulator.testing import RunningSimulator, running_simulator
from tests.support import mi_credential

FINANCE, HR, SALES, DEV = EUROPE_ELIGIBLE
ERP = BYOK_ENVIRONMENTS[0]
MARKETING = DEMO_ENVIRONMENTS[5]["id"]
TRIAL = DEMO_ENVIRONMENTS[7]["id"]
US_OPS = DEMO_ENVIRONMENTS[9]["id"]
UNKNOWN = "00000000-0000-4000-8000-00000000dead"
P = "/providers/Microsoft.BusinessAppPlatform"
ENVS = P + "/scopes/admin/environments"
BAP_SCOPE = "https://service.powerapps.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"
KEY_PERMS = ["get", "wrapKey", "unwrapKey"]


class Bap:
    """An httpx client for the simulated BAP with a bearer token of one identity."""

    def __init__(self, sim: RunningSimulator, identity: str) -> None:
        self.sim = sim
        token = mi_credential(sim.endpoints, identity).get_token(BAP_SCOPE).token
        self.http = httpx.Client(
            base_url=sim.endpoints["bap"], verify=sim.ca_bundle, headers={"Authorization": f"Bearer {token}"}
        )

    def env(self, env_id: str) -> dict[str, Any]:
        """GET one environment on the admin route (200 asserted)."""
        response = self.http.get(f"{ENVS}/{env_id}", params={"api-version": "2023-06-01"})
        assert response.status_code == 200, response.text
        return response.json()

    def props(self, env_id: str) -> dict[str, Any]:
        """The environment's properties."""
        return self.env(env_id)["properties"]

    def post(self, env_id: str, action: str, system_id: str | None, **body: Any) -> httpx.Response:
        """POST link or unlink."""
        payload = {"SystemId": system_id, **body} if system_id is not None else body
        return self.http.post(
            f"{P}/environments/{env_id}/enterprisePolicies/Encryption/{action}",
            params={"api-version": "2019-10-01"},
            json=payload,
        )

    def poll(self, response: httpx.Response, header: str = "operation-location") -> dict[str, Any]:
        """GET the operation a 202 points to."""
        result = self.http.get(response.headers[header])
        assert result.status_code == 200, result.text
        return result.json()

    def finish(self, response: httpx.Response, seconds: float = 30) -> dict[str, Any]:
        """Advance simulated time past the operation and return it settled."""
        assert response.status_code == 202, response.text
        self.sim.control.advance(seconds)
        op = self.poll(response)
        assert op["state"]["id"] in ("Succeeded", "Failed")
        return op


class Arm:
    """An httpx client for the simulated ARM as keyvault-admin."""

    def __init__(self, sim: RunningSimulator) -> None:
        token = mi_credential(sim.endpoints, "keyvault-admin").get_token(ARM_SCOPE).token
        self.http = httpx.Client(
            base_url=sim.endpoints["arm"], verify=sim.ca_bundle, headers={"Authorization": f"Bearer {token}"}
        )
        self.sub = sim.endpoints["subscription_id"]
        self.rg = f"/subscriptions/{self.sub}/resourceGroups/rg-cmk"

    def call(self, method: str, path: str, api_version: str, **kwargs: Any) -> httpx.Response:
        """One ARM call; skips the test while the ARM half of the simulator has no such route yet."""
        response = self.http.request(method, path, params={"api-version": api_version}, **kwargs)
        if response.status_code == 404 and "No route is registered" in response.text:
            pytest.skip(f"the simulated ARM does not serve {method} {path} yet")
        return response

    def policy(self, name: str) -> dict[str, Any]:
        """GET an enterprise policy."""
        path = f"{self.rg}/providers/Microsoft.PowerPlatform/enterprisePolicies/{name}"
        response = self.call("GET", path, "2020-10-30-preview")
        assert response.status_code == 200, response.text
        return response.json()

    def access_policy(self, operation: str, object_id: str, tenant_id: str) -> None:
        """Add or remove key permissions Get/WrapKey/UnwrapKey for a principal on kv-cmk-demo."""
        path = f"{self.rg}/providers/Microsoft.KeyVault/vaults/kv-cmk-demo/accessPolicies/{operation}"
        body = {
            "properties": {
                "accessPolicies": [
                    {"tenantId": tenant_id, "objectId": object_id, "permissions": {"keys": KEY_PERMS}}
                ]
            }
        }
        response = self.call("PUT", path, "2023-07-01", json=body)
        assert response.status_code in (200, 201), response.text


# -- a tenant with enterprise policies (module-scoped simulator) ----------------------------------
def _policy(name: str, location: str = "europe", **extra: Any) -> dict[str, Any]:
    spec = {
        "name": name,
        "resource_group": "rg-cmk",
        "location": location,
        "vault": "kv-cmk-demo",
        "key": "cmk",
        "grant": "access_policy",
        "reader_for": ["powerplatform-admin"],
    }
    spec.update(extra)
    return spec


def cmk_scenario() -> dict[str, Any]:
    """The demo tenant plus a key and four europe policies (granted, second, no Reader, no key access)."""
    scenario = build_demo()
    scenario["vaults"][0]["keys"] = [{"name": "cmk", "size": 2048}]
    scenario["enterprise_policies"] = [
        _policy("ep-eu"),
        _policy("ep-eu-2"),
        _policy("ep-noreader", reader_for=[]),
        _policy("ep-nogrant", grant=None),
        _policy("ep-us", location="unitedstates"),
    ]
    scenario["settings"] = {"link_seconds": 4, "unlink_seconds": 4, "lock_detection_seconds": 5}
    return scenario


@pytest.fixture(scope="module")
def cmk_sim_running() -> Iterator[RunningSimulator]:
    """A simulator of its own for the tests that need enterprise policies."""
    with running_simulator(cmk_scenario()) as running:
        yield running


@pytest.fixture
def cmk_sim(cmk_sim_running: RunningSimulator) -> RunningSimulator:
    """That simulator reset to its scenario."""
    cmk_sim_running.control.reset()
    return cmk_sim_running


@pytest.fixture
def bap(cmk_sim: RunningSimulator) -> Bap:
    """BAP as powerplatform-admin on the policy tenant."""
    return Bap(cmk_sim, "powerplatform-admin")


def system_id(sim: RunningSimulator, name: str) -> str:
    """A scenario policy's systemId (read from the in-process state, as a caller would read it from ARM)."""
    for policy in sim.control.state()["arm"]["enterprise_policies"]:
        if policy["name"] == name:
            return policy["properties"]["systemId"]
    raise AssertionError(f"no policy {name}")


# -- demo tenant: reads, paging, auth, rate limit ----------------------------------------------------
def test_api_version_is_required(fresh_sim: RunningSimulator) -> None:
    client = Bap(fresh_sim, "powerplatform-admin")
    for path in (ENVS, f"{ENVS}/{FINANCE}", f"{P}/environments/{FINANCE}"):
        response = client.http.get(path)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_list_and_get_environments_on_both_routes(fresh_sim: RunningSimulator) -> None:
    client = Bap(fresh_sim, "powerplatform-admin")
    listed = client.http.get(
        ENVS, params={"api-version": "2023-06-01", "$expand": "permissions,properties.capacity"}
    ).json()
    assert len(listed["value"]) == 12 and "nextLink" not in listed
    by_id = {e["name"]: e for e in listed["value"]}
    assert by_id[FINANCE]["properties"]["displayName"] == "Contoso Finance"
    assert by_id[ERP]["properties"]["protectionStatus"] == {"keyManagedBy": "Customer", "keySource": "Byok"}
    admin = client.env(FINANCE.upper())
    assert (
        admin["id"] == f"{ENVS}/{FINANCE}"
        and admin["type"] == "Microsoft.BusinessAppPlatform/scopes/environments"
    )
    assert admin["properties"]["governanceConfiguration"] == {"protectionLevel": "Standard"}
    legacy = client.http.get(f"{P}/environments/{FINANCE}", params={"api-version": "2016-11-01"})
    assert legacy.status_code == 200
    assert legacy.json()["id"] == f"{P}/environments/{FINANCE}"
    assert legacy.json()["properties"] == admin["properties"]
    missing = client.http.get(f"{ENVS}/{UNKNOWN}", params={"api-version": "2023-06-01"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "EnvironmentNotFound"


def test_paging_follows_absolute_next_links(fresh_sim: RunningSimulator) -> None:
    fresh_sim.control.settings(bap_page_size=5)
    client = Bap(fresh_sim, "powerplatform-admin")
    url: str | None = f"{ENVS}?api-version=2023-06-01"
    pages: list[int] = []
    seen: list[str] = []
    while url:
        body = client.http.get(url).json()
        pages.append(len(body["value"]))
        seen += [e["name"] for e in body["value"]]
        url = body.get("nextLink")
        if url:
            assert url.startswith(fresh_sim.endpoints["bap"] + ENVS) and "api-version=2023-06-01" in url
    assert pages == [5, 5, 2]
    assert seen == [e["id"] for e in DEMO_ENVIRONMENTS]


def test_caller_without_the_admin_role_gets_404(fresh_sim: RunningSimulator) -> None:
    outsider = Bap(fresh_sim, "keyvault-admin")
    response = outsider.http.get(f"{ENVS}/{FINANCE}", params={"api-version": "2023-06-01"})
    assert response.status_code == 404
    assert (
        f"The environment '{FINANCE}' could not be found in the tenant" in response.json()["error"]["message"]
    )
    assert outsider.post(FINANCE, "link", "/regions/europe/x").status_code == 404
    assert outsider.http.get(ENVS, params={"api-version": "2023-06-01"}).json()["value"] == []


def test_scopes_admin_link_route_is_404(fresh_sim: RunningSimulator) -> None:
    client = Bap(fresh_sim, "powerplatform-admin")
    for action in ("link", "unlink"):
        response = client.http.post(
            f"{ENVS}/{FINANCE}/enterprisePolicies/Encryption/{action}",
            params={"api-version": "2019-10-01"},
            json={"SystemId": "/regions/europe/x"},
        )
        assert response.status_code == 404


def test_rate_limit_answers_429_with_retry_after(fresh_sim: RunningSimulator) -> None:
    client = Bap(fresh_sim, "powerplatform-admin")
    fresh_sim.control.settings(bap_rate_per_second=0.5, bap_rate_burst=3)
    statuses = [
        client.http.get(f"{ENVS}/{FINANCE}", params={"api-version": "1"}).status_code for _ in range(5)
    ]
    assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429
    limited = client.http.get(f"{ENVS}/{FINANCE}", params={"api-version": "1"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "TooManyRequests"
    other = Bap(fresh_sim, "keyvault-admin")  # per caller: another identity is not limited
    assert other.http.get(ENVS, params={"api-version": "1"}).status_code == 200


def test_governance_makes_an_environment_managed(fresh_sim: RunningSimulator) -> None:
    client = Bap(fresh_sim, "powerplatform-admin")
    path = f"{P}/environments/{MARKETING}/governanceConfiguration"
    bad = client.http.post(path, params={"api-version": "2021-04-01"}, json={"nope": 1})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidRequestBody"
    started = client.http.post(
        path, params={"api-version": "2021-04-01"}, json={"protectionLevel": "Standard", "settings": {}}
    )
    assert started.status_code == 202
    busy = client.http.post(path, params={"api-version": "2021-04-01"}, json={"protectionLevel": "Standard"})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "OperationNotStartable"
    op = client.finish(started)
    assert (op["type"]["id"], op["state"]["id"]) == ("UpdateGovernanceConfiguration", "Succeeded")
    assert client.props(MARKETING)["governanceConfiguration"]["protectionLevel"] == "Standard"
    again = client.http.post(path, params={"api-version": "2021-04-01"}, json={"protectionLevel": "Standard"})
    assert again.status_code == 409
    trial = client.http.post(
        f"{P}/environments/{TRIAL}/governanceConfiguration",
        params={"api-version": "2021-04-01"},
        json={"protectionLevel": "Standard"},
    )
    assert trial.status_code == 400 and trial.json()["error"]["code"] == "EnvironmentSkuNotSupported"


def test_bad_link_bodies_are_400(fresh_sim: RunningSimulator) -> None:
    client = Bap(fresh_sim, "powerplatform-admin")
    for body in ({}, {"SystemId": ""}, {"SystemId": 3}):
        response = client.http.post(
            f"{P}/environments/{FINANCE}/enterprisePolicies/Encryption/link",
            params={"api-version": "2019-10-01"},
            json=body,
        )
        assert response.status_code == 400 and response.json()["error"]["code"] == "InvalidRequestBody"
    raw = client.http.post(
        f"{P}/environments/{FINANCE}/enterprisePolicies/Encryption/link",
        params={"api-version": "2019-10-01"},
        content=b"not json",
    )
    assert raw.status_code == 400
    unknown = client.post(
        FINANCE, "link", "/regions/europe/providers/Microsoft.PowerPlatform/enterprisePolicies/x"
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "EnterprisePolicyNotFound"


# -- tenant with policies: link, rules, operations, swap, unlink, lock, re-enable -------------------------
def test_link_runs_as_an_operation_and_blocks_the_environment(bap: Bap, cmk_sim: RunningSimulator) -> None:
    ep = system_id(cmk_sim, "ep-eu")
    started = bap.post(FINANCE, "link", ep)
    assert started.status_code == 202, started.text
    headers = started.headers
    assert headers["operation-location"].startswith(cmk_sim.endpoints["bap"] + P + "/operations/")
    assert "api-version=" in headers["operation-location"]
    assert "/lifecycleOperations/" in headers["Location"] and "api-version=2023-06-01" in headers["Location"]
    assert headers["Retry-After"] == "1"
    first = bap.poll(started)
    assert first["state"]["id"] == "NotStarted" and first["type"]["id"] == "NewCustomerManagedKey"
    props = bap.props(FINANCE)
    assert props["states"]["runtime"]["id"] == "Disabled"
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Linking"
    busy = bap.post(FINANCE, "link", ep)
    assert busy.status_code == 409
    assert busy.json()["error"] == {
        "code": "OperationNotStartable",
        "message": "This operation cannot be performed because there is an active lifecycle operation on the "
        f"environment '{FINANCE}'.",
        "detailUrlType": "NotSpecified",
    }
    cmk_sim.control.advance(1.5)
    running = bap.http.get(headers["Location"])
    assert running.json()["state"]["id"] == "Running" and running.headers["Retry-After"] == "1"
    assert [s["id"] for s in running.json()["stages"]] == ["Validate", "Prepare", "Run", "Finalize"]
    done = bap.finish(started)
    assert (
        done["state"]["id"] == "Succeeded" and "Retry-After" not in bap.http.get(headers["Location"]).headers
    )
    assert all(s["state"]["id"] == "Succeeded" for s in done["stages"])
    props = bap.props(FINANCE)
    assert props["states"]["runtime"]["id"] == "Enabled"
    assert props["protectionStatus"]["keyManagedBy"] == "Customer"
    cmk = props["enterprisePolicies"]["customerManagedKeys"]
    assert cmk["systemId"] == ep and cmk["linkStatus"] == "Linked" and cmk["location"] == "europe"
    assert cmk["id"].lower().endswith("/enterprisepolicies/ep-eu") and ep.endswith(cmk["policyId"])
    again = bap.post(FINANCE, "link", ep.upper(), ignored="x")
    assert again.status_code == 202 and bap.poll(again)["state"]["id"] == "Succeeded"  # same policy: no-op


@pytest.mark.parametrize(
    ("env_id", "policy", "status", "code"),
    [
        (US_OPS, "ep-eu", 400, "EnterprisePolicyLocationMismatch"),
        (TRIAL, "ep-eu", 400, "EnvironmentSkuNotSupported"),
        (MARKETING, "ep-eu", 400, "ManagedEnvironmentRequired"),
        (FINANCE, "ep-noreader", 403, "EnterprisePolicyAccessDenied"),
        (UNKNOWN, "ep-eu", 404, "EnvironmentNotFound"),
    ],
)
def test_link_rules_checked_at_request(
    bap: Bap, cmk_sim: RunningSimulator, env_id: str, policy: str, status: int, code: str
) -> None:
    response = bap.post(env_id, "link", system_id(cmk_sim, policy))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_link_without_key_access_fails_in_the_operation(bap: Bap, cmk_sim: RunningSimulator) -> None:
    response = bap.http.post(
        f"{P}/environments/{FINANCE}/enterprisePolicies/Encryption/link",
        params={"api-version": "2019-10-01"},
        json={"systemId": system_id(cmk_sim, "ep-nogrant")},  # lower-case field name is accepted
    )
    op = bap.finish(response)
    assert op["state"]["id"] == "Failed" and op["stages"][0]["state"]["id"] == "Failed"
    assert op["error"]["code"] == "CustomerManagedKeyInaccessible"
    assert "get, wrapkey, unwrapkey" in op["error"]["message"]
    props = bap.props(FINANCE)
    assert props["protectionStatus"]["keyManagedBy"] == "Microsoft"
    assert props["states"]["runtime"]["id"] == "Enabled"
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Failed"
    history = bap.http.get(f"{ENVS}/{FINANCE}/operations", params={"api-version": "2023-06-01"}).json()
    assert history["value"][0]["state"]["id"] == "Failed"


def test_swap_then_unlink(bap: Bap, cmk_sim: RunningSimulator) -> None:
    first, second = system_id(cmk_sim, "ep-eu"), system_id(cmk_sim, "ep-eu-2")
    assert bap.finish(bap.post(HR, "link", first))["state"]["id"] == "Succeeded"
    swap = bap.post(HR, "link", second)
    assert bap.poll(swap)["type"]["id"] == "RotateCustomerManagedKey"
    assert bap.props(HR)["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Linking"
    assert bap.finish(swap)["state"]["id"] == "Succeeded"
    assert bap.props(HR)["enterprisePolicies"]["customerManagedKeys"]["systemId"] == second
    wrong = bap.post(HR, "unlink", first)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "EnterprisePolicyNotLinked"
    unlink = bap.post(HR, "unlink", second)
    assert bap.poll(unlink)["type"]["id"] == "RevertToMicrosoftKey"
    props = bap.props(HR)
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Unlinking"
    assert props["states"]["runtime"]["id"] == "Disabled"
    assert bap.finish(unlink)["state"]["id"] == "Succeeded"
    props = bap.props(HR)
    assert props["protectionStatus"] == {"keyManagedBy": "Microsoft"} and "enterprisePolicies" not in props


def test_byok_environment_moves_to_cmk(bap: Bap, cmk_sim: RunningSimulator) -> None:
    assert bap.finish(bap.post(ERP, "link", system_id(cmk_sim, "ep-eu")))["state"]["id"] == "Succeeded"
    props = bap.props(ERP)
    assert props["protectionStatus"] == {"keyManagedBy": "Customer"}
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Linked"


def test_revoked_access_policy_locks_and_restored_access_allows_reenable(
    bap: Bap, cmk_sim: RunningSimulator
) -> None:
    arm = Arm(cmk_sim)
    ep = system_id(cmk_sim, "ep-eu")
    for env_id in (FINANCE, SALES):
        assert bap.finish(bap.post(env_id, "link", ep))["state"]["id"] == "Succeeded"
    policy = arm.policy("ep-eu")
    assert policy["properties"]["healthStatus"] == "Healthy"
    principal, tenant = policy["identity"]["principalId"], policy["identity"]["tenantId"]
    arm.access_policy("remove", principal, tenant)
    assert arm.policy("ep-eu")["properties"]["healthStatus"] == "Unhealthy"
    assert bap.props(FINANCE)["states"]["runtime"]["id"] == "Enabled"  # not yet detected
    cmk_sim.control.advance(6)
    for env_id in (FINANCE, SALES):
        runtime = bap.props(env_id)["states"]["runtime"]
        assert (runtime["id"], runtime["runtimeReasonCode"]) == ("Disabled", "CustomerManagedKeyInaccessible")
    enable_path = f"{ENVS}/{FINANCE}/enable"
    refused = bap.http.post(enable_path, params={"api-version": "2018-01-01"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "CustomerManagedKeyInaccessible"
    arm.access_policy("add", principal, tenant)
    cmk_sim.control.advance(60)
    assert bap.props(FINANCE)["states"]["runtime"]["id"] == "Disabled"  # restoring alone does not re-enable
    started = bap.http.post(enable_path, params={"api-version": "2018-01-01"})
    assert started.status_code == 202 and "operation-location" in started.headers
    op = bap.finish(started)
    assert (op["type"]["id"], op["state"]["id"]) == ("EnableEnvironment", "Succeeded")
    assert bap.props(FINANCE)["states"]["runtime"]["id"] == "Enabled"
    assert bap.props(SALES)["states"]["runtime"]["id"] == "Disabled"
    not_disabled = bap.http.post(enable_path, params={"api-version": "2018-01-01"})
    assert not_disabled.status_code == 409


def test_policy_delete_is_refused_while_linked(bap: Bap, cmk_sim: RunningSimulator) -> None:
    arm = Arm(cmk_sim)
    assert bap.finish(bap.post(DEV, "link", system_id(cmk_sim, "ep-eu")))["state"]["id"] == "Succeeded"
    path = f"{arm.rg}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-eu"
    response = arm.call("DELETE", path, "2020-10-30-preview")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "EnterprisePolicyDeleteNotAllowed"
