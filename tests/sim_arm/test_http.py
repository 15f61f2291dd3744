"""ARM over HTTPS with plain httpx: envelopes, authorization, case-insensitive paths, status codes."""

from __future__ import annotations

import ssl
import uuid
from typing import Any

import httpx
import pytest

from simulator.testing import RunningSimulator
from tests.support import mi_credential

PP_API = "2020-10-30-preview"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


class Arm:
    """A tiny ARM caller for one identity."""

    def __init__(self, sim: RunningSimulator, identity: str) -> None:
        token = (
            mi_credential(sim.endpoints, identity).get_token("https://management.azure.com/.default").token
        )
        self.sub = sim.endpoints["subscription_id"]
        self.http = httpx.Client(
            base_url=sim.endpoints["arm"],
            verify=ssl.create_default_context(cafile=sim.ca_bundle),
            headers={"Authorization": f"Bearer {token}"},
        )

    def __call__(self, method: str, path: str, api: str | None = "2025-04-01", **kw: Any) -> httpx.Response:
        params = {"api-version": api} if api else {}
        params.update(kw.pop("params", {}))
        return self.http.request(method, path.replace("{sub}", self.sub), params=params, **kw)


@pytest.fixture
def admin(fresh_sim: RunningSimulator) -> Arm:
    return Arm(fresh_sim, "keyvault-admin")


@pytest.fixture
def pp_admin(fresh_sim: RunningSimulator) -> Arm:
    return Arm(fresh_sim, "powerplatform-admin")


def policy_body(sub: str) -> dict[str, Any]:
    vault = f"/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
    return {
        "location": "europe",
        "kind": "Encryption",
        "identity": {"type": "SystemAssigned"},
        "properties": {"encryption": {"state": "Enabled", "keyVault": {"id": vault, "key": {"name": "cmk"}}}},
    }


def test_paths_match_case_insensitively(admin: Arm) -> None:
    lower = admin("GET", "/subscriptions/{sub}/resourcegroups/rg-cmk")
    camel = admin("GET", "/SUBSCRIPTIONS/{sub}/resourceGroups/RG-CMK")
    assert lower.status_code == camel.status_code == 200
    assert camel.json()["id"].endswith("/resourceGroups/rg-cmk")


def test_errors_use_the_envelope_without_retry_after(admin: Arm) -> None:
    missing = admin("GET", "/subscriptions/{sub}/resourcegroups/nope")
    other_sub = admin("GET", f"/subscriptions/{uuid.uuid4()}/resourcegroups/rg-cmk")
    no_api = admin("GET", "/subscriptions/{sub}/resourcegroups/rg-cmk", api=None)
    bad_api = admin(
        "GET", "/subscriptions/{sub}/providers/Microsoft.PowerPlatform/enterprisePolicies", api="2021-01-01"
    )
    observed = [(r.status_code, r.json()["error"]["code"]) for r in (missing, other_sub, no_api, bad_api)]
    assert observed == [
        (404, "ResourceGroupNotFound"),
        (404, "SubscriptionNotFound"),
        (400, "MissingApiVersionParameter"),
        (400, "NoRegisteredProviderFound"),
    ]
    assert all("retry-after" not in r.headers for r in (missing, other_sub, no_api, bad_api))


def test_authorization_failed_then_reader_grant_allows_the_read(
    admin: Arm, pp_admin: Arm, sim: RunningSimulator
) -> None:
    sim.control.settings(provider_registration_seconds=0)
    assert admin("POST", "/subscriptions/{sub}/providers/Microsoft.PowerPlatform/register").status_code == 200
    path = (
        "/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/ep1"
    )
    created = admin("PUT", path, api=PP_API, json=policy_body(admin.sub))
    assert created.status_code == 201
    denied = pp_admin("GET", path, api=PP_API)
    assert denied.status_code == 403 and "retry-after" not in denied.headers
    error = denied.json()["error"]
    pp_oid = sim.identity("powerplatform-admin")["object_id"]
    assert error["code"] == "AuthorizationFailed"
    assert error["message"].startswith(
        f"The client '{pp_oid}' with object id '{pp_oid}' does not have authorization"
    )
    assert "'Microsoft.PowerPlatform/enterprisePolicies/read'" in error["message"]
    reader = f"/subscriptions/{admin.sub}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    grant = admin(
        "PUT",
        created.json()["id"] + f"/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
        api="2022-04-01",
        json={
            "properties": {
                "roleDefinitionId": reader,
                "principalId": pp_oid,
                "principalType": "ServicePrincipal",
            }
        },
    )
    assert grant.status_code == 201
    allowed = pp_admin("GET", path.replace("resourceGroups", "resourcegroups"), api=PP_API)
    assert (
        allowed.status_code == 200
        and allowed.json()["properties"]["systemId"] == created.json()["properties"]["systemId"]
    )
    assert pp_admin("DELETE", path, api=PP_API).status_code == 403


def test_policy_put_before_registration_is_409_missing_registration(admin: Arm) -> None:
    path = (
        "/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/ep1"
    )
    response = admin("PUT", path, api=PP_API, json=policy_body(admin.sub))
    assert response.status_code == 409 and "retry-after" not in response.headers
    assert response.json()["error"]["code"] == "MissingSubscriptionRegistration"
    assert "namespace 'Microsoft.PowerPlatform'" in response.json()["error"]["message"]


def test_policy_crud_status_codes(admin: Arm, sim: RunningSimulator) -> None:
    sim.control.settings(provider_registration_seconds=0)
    admin("POST", "/subscriptions/{sub}/providers/Microsoft.PowerPlatform/register")
    path = (
        "/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/ep1"
    )
    bad = admin("PUT", path, api="2020-10-30", json={**policy_body(admin.sub), "location": "westeurope"})
    assert bad.status_code == 400 and "unitedstates" in bad.json()["error"]["message"]
    assert admin("PUT", path, api="2020-10-30", json=policy_body(admin.sub)).status_code == 201
    assert admin("PUT", path, api=PP_API, json=policy_body(admin.sub)).status_code == 200
    patched = admin("PATCH", path, api=PP_API, json={"tags": {"env": "demo"}})
    assert patched.status_code == 200 and patched.json()["tags"] == {"env": "demo"}
    listed = admin(
        "GET", "/subscriptions/{sub}/providers/Microsoft.PowerPlatform/enterprisePolicies", api=PP_API
    )
    assert [p["name"] for p in listed.json()["value"]] == ["ep1"]
    assert admin("DELETE", path, api=PP_API).status_code == 200
    assert admin("DELETE", path, api=PP_API).status_code == 204
    assert admin("GET", path, api=PP_API).json()["error"]["code"] == "ResourceNotFound"


def test_resource_group_head_put_and_delete_lro(admin: Arm) -> None:
    assert admin("HEAD", "/subscriptions/{sub}/resourcegroups/rg-new").status_code == 404
    assert (
        admin(
            "PUT", "/subscriptions/{sub}/resourcegroups/rg-new", json={"location": "westeurope"}
        ).status_code
        == 201
    )
    assert (
        admin(
            "PUT", "/subscriptions/{sub}/resourcegroups/rg-new", json={"location": "westeurope"}
        ).status_code
        == 200
    )
    moved = admin("PUT", "/subscriptions/{sub}/resourcegroups/rg-new", json={"location": "eastus"})
    assert moved.status_code == 409
    assert admin("HEAD", "/subscriptions/{sub}/resourcegroups/rg-new").status_code == 204
    deleting = admin("DELETE", "/subscriptions/{sub}/resourcegroups/rg-new")
    assert deleting.status_code == 202
    assert admin.http.get(deleting.headers["Location"]).status_code == 200
    assert admin("HEAD", "/subscriptions/{sub}/resourcegroups/rg-new").status_code == 404


def test_vault_put_answers_with_an_async_operation(admin: Arm, sim: RunningSimulator) -> None:
    sim.control.settings(vault_create_seconds=3600, lro_retry_after=7)
    body = {
        "location": "westeurope",
        "properties": {"tenantId": sim.endpoints["tenant_id"], "sku": {"family": "A", "name": "standard"}},
    }
    response = admin(
        "PUT",
        "/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-http",
        api="2026-05-15",
        json=body,
    )
    assert response.status_code == 201 and response.headers["Retry-After"] == "7"
    status = admin.http.get(response.headers["Azure-AsyncOperation"])
    assert status.json()["status"] == "InProgress" and status.headers["Retry-After"] == "7"
    sim.control.advance(3601)
    assert admin.http.get(response.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
    vault_uri = response.json()["properties"]["vaultUri"]
    assert vault_uri.startswith("https://127.0.0.1:") and vault_uri.count("/") == 3


def test_deployment_validate(admin: Arm) -> None:
    path = "/subscriptions/{sub}/resourcegroups/rg-cmk/providers/Microsoft.Resources/deployments/v1/validate"
    resource = {"type": "Microsoft.Web/sites", "apiVersion": "2020-10-30", "name": "x", "location": "europe"}
    bad = admin("POST", path, api="2026-06-01", json={"properties": {"template": {"resources": [resource]}}})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "UnsupportedResourceType"
    resource.update(type="Microsoft.PowerPlatform/enterprisePolicies", name="[parameters('n')]")
    template = {"parameters": {"n": {"type": "string"}}, "resources": [resource]}
    good = admin(
        "POST",
        path,
        api="2026-06-01",
        json={"properties": {"template": template, "parameters": {"n": {"value": "ep"}}}},
    )
    assert good.status_code == 200 and good.json()["properties"]["validatedResources"][0]["id"].endswith(
        "/ep"
    )
