"""Models, resource-id parsers, payload parsers and error translation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from cmk.clients.arm import encryption_policy_template, policy_info
from cmk.clients.powerplatform import environment_info, operation_status
from cmk.domain.models import OperationHandle, parse_policy_id, parse_vault_id
from cmk.domain.resource_ids import same_id, scope_covers
from cmk.domain.roles import READER, role_guid
from cmk.errors import (
    BusyError,
    CmkError,
    ConfigurationError,
    ForbiddenError,
    InvalidResourceIdError,
    NotFoundError,
    ThrottledError,
    from_httpx_response,
    parse_error_body,
    parse_retry_after,
)
from tests.cmk import factories as f


def test_parse_vault_and_policy_ids() -> None:
    ref = parse_vault_id(f.VAULT_ID.replace("resourceGroups", "resourcegroups"))
    assert (ref.subscription_id, ref.resource_group, ref.name) == (f.SUB, "rg-cmk", "kv-cmk-demo")
    pol = parse_policy_id(f.POLICY_ID)
    assert (pol.resource_group, pol.name) == ("rg-cmk", "ep-eu")


@pytest.mark.parametrize(
    "bad",
    ["", "kv-cmk-demo", f.VAULT_ID + "/", f.VAULT_ID + "/keys/x", f.POLICY_ID],
)
def test_bad_vault_ids_say_what_shape_to_use(bad: str) -> None:
    with pytest.raises(InvalidResourceIdError) as info:
        parse_vault_id(bad)
    assert "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}" in str(
        info.value
    )
    assert isinstance(info.value, ConfigurationError) and isinstance(info.value, ValueError)


def test_policy_id_needs_a_guid_subscription() -> None:
    with pytest.raises(InvalidResourceIdError):
        parse_policy_id(f.POLICY_ID.replace(f.SUB, "not-a-guid"))


def test_id_comparisons() -> None:
    assert same_id(f.VAULT_ID.upper(), f.VAULT_ID + "/")
    assert not same_id(f.VAULT_ID, None)
    assert scope_covers(f"/subscriptions/{f.SUB}", f.VAULT_ID)
    assert not scope_covers(f.VAULT_ID[:-1], f.VAULT_ID)  # a prefix that is not a path segment
    assert role_guid("Reader") == READER and role_guid(READER.upper()) == READER and role_guid("nope") is None


def test_operation_handle_round_trips_through_json() -> None:
    handle = OperationHandle("e1", "link", "https://h/op/1?api-version=x", 2.0, "1", system_id="/regions/x")
    data = json.loads(json.dumps(handle.to_dict()))
    again = OperationHandle.from_dict(data)
    assert again == handle
    assert again.started_at.tzinfo is not None


def test_policy_payload_parsing_accepts_both_principal_field_names() -> None:
    body = {
        "id": f.POLICY_ID,
        "name": "ep-eu",
        "location": "europe",
        "kind": "Encryption",
        "identity": {"type": "SystemAssigned", "systemAssignedIdentityPrincipalId": "p1", "tenantId": "t"},
        "properties": {
            "systemId": "/regions/europe/x",
            "healthStatus": "Healthy",
            "encryption": {"state": "Enabled", "keyVault": {"id": f.VAULT_ID, "key": {"name": "cmk"}}},
        },
    }
    info = policy_info(body)
    assert (info.principal_id, info.key_name, info.key_version, info.vault_id) == (
        "p1",
        "cmk",
        None,
        f.VAULT_ID,
    )
    body["identity"] = {"type": "SystemAssigned", "principalId": "p2"}
    assert policy_info(body).principal_id == "p2"


def test_template_matches_the_reference_shape() -> None:
    template = encryption_policy_template("ep", "europe", f.VAULT_ID, "cmk", None)
    resource = template["resources"][0]
    assert resource["apiVersion"] == "2020-10-30" and resource["kind"] == "Encryption"
    assert resource["identity"] == {"type": "SystemAssigned"}
    assert resource["properties"]["encryption"]["keyVault"] == {"id": f.VAULT_ID, "key": {"name": "cmk"}}
    pinned = encryption_policy_template("ep", "europe", f.VAULT_ID, "cmk", "v1")
    assert pinned["resources"][0]["properties"]["encryption"]["keyVault"]["key"]["version"] == "v1"


def test_environment_payload_parsing() -> None:
    payload = {
        "name": "e1",
        "location": "europe",
        "properties": {
            "displayName": "Finance",
            "azureRegion": "westeurope",
            "environmentSku": "Production",
            "states": {
                "management": {"id": "Ready"},
                "runtime": {"id": "Disabled", "runtimeReasonCode": "X"},
            },
            "protectionStatus": {"keyManagedBy": "Customer", "keySource": "Byok"},
            "governanceConfiguration": {"protectionLevel": "Standard"},
            "EnterprisePolicies": {
                "CustomerManagedKeys": {"id": f.POLICY_ID, "systemId": "/s", "linkStatus": "Linking"}
            },
        },
    }
    env = environment_info(payload)
    assert env.managed and env.byok and env.operation_running
    assert env.cmk is not None and env.cmk.policy_arm_id == f.POLICY_ID
    assert (env.runtime_state, env.runtime_reason, env.sku) == ("Disabled", "X", "Production")
    payload["properties"]["governanceConfiguration"] = {"protectionLevel": "Basic"}
    payload["properties"].pop("EnterprisePolicies")
    payload["properties"]["protectionStatus"] = {"keyManagedBy": "Microsoft"}
    plain = environment_info(payload)
    assert not plain.managed and not plain.byok and plain.cmk is None


def test_operation_payload_parsing() -> None:
    status = operation_status(
        {
            "id": "op",
            "state": {"id": "Failed"},
            "error": {"code": "KeyVaultAccessDenied", "message": "no access"},
            "stages": [{"id": "Validate", "state": {"id": "Failed"}}],
        }
    )
    assert status.done and not status.succeeded
    assert (status.error_code, status.error_message, status.stages) == (
        "KeyVaultAccessDenied",
        "no access",
        (("Validate", "Failed"),),
    )
    assert not operation_status({"state": {"id": "Running"}}).done


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("POST", "https://bap/x", headers={"x-ms-client-request-id": "client-1"})
    return httpx.Response(status, json=body, headers=headers or {}, request=request)


def test_httpx_translation_to_typed_errors() -> None:
    busy = from_httpx_response(
        _response(
            409,
            {"error": {"code": "OperationNotStartable", "message": "active op"}},
            {"x-ms-correlation-id": "c-9"},
        ),
        action="Starting the link",
        target="e1",
    )
    assert isinstance(busy, BusyError) and busy.correlation_id == "c-9" and busy.status == 409
    assert "wait for it to finish" in str(busy) and "c-9" in str(busy)
    throttled = from_httpx_response(
        _response(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "7"}), action="x"
    )
    assert isinstance(throttled, ThrottledError) and throttled.retry_after == 7
    assert throttled.correlation_id == "client-1"
    assert isinstance(from_httpx_response(_response(404, {}), action="x"), NotFoundError)
    assert isinstance(from_httpx_response(_response(403, {}), action="x"), ForbiddenError)
    assert type(from_httpx_response(_response(500, "oops"), action="x")).__name__ == "ServiceError"


def test_error_body_and_retry_after_parsing() -> None:
    assert parse_error_body({"error": {"code": "Forbidden", "innererror": {"code": "ForbiddenByRbac"}}})[
        0
    ] == ("Forbidden/ForbiddenByRbac")
    assert parse_error_body({"code": "X", "message": "m"}) == ("X", "m")
    assert (
        parse_retry_after("3") == 3 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    )
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_cmk_error_carries_context() -> None:
    err = CmkError("Do this.", code="C", status=400, correlation_id="r", target="t")
    assert err.to_dict()["correlation_id"] == "r" and str(err).startswith("Do this. [code=C")
    assert datetime.now(UTC)  # keep the import honest


def test_which_environments_use_a_policy() -> None:
    from cmk.domain.models import environments_using

    sid = f.policy().system_id
    linked = f.env(id="e1", cmk=f.link("Linked"))
    linking = f.env(id="e2", cmk=f.link("Linking"))
    other = f.env(
        id="e3", cmk=f.link("Linked", system_id="/regions/europe/providers/x/enterprisePolicies/other")
    )
    microsoft = f.env(id="e4")
    assert linked.uses_policy(sid.upper()) and linking.uses_policy(sid)
    assert not other.uses_policy(sid) and not microsoft.uses_policy(sid) and not linked.uses_policy("")
    assert [e.id for e in environments_using([linked, linking, other, microsoft], sid)] == ["e1", "e2"]
