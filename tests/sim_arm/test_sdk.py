"""End to end with the real Azure SDK management clients, TLS verification on, against the simulated ARM."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.features import FeatureClient
from azure.mgmt.resource.resources import ResourceManagementClient

from simulator.testing import RunningSimulator
from tests.support import mi_credential

ROLE_DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions/"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
PP_API = "2020-10-30-preview"


class Clients:
    """The management clients for one identity."""

    def __init__(self, sim: RunningSimulator, identity: str) -> None:
        credential = mi_credential(sim.endpoints, identity)
        sub = sim.endpoints["subscription_id"]
        kw: dict[str, Any] = {
            "base_url": sim.endpoints["arm"],
            "connection_verify": sim.ca_bundle,
            "polling_interval": 0,
        }
        self.sub = sub
        self.kv = KeyVaultManagementClient(credential, sub, **kw)
        self.rm = ResourceManagementClient(credential, sub, **kw)
        self.deploy = DeploymentsMgmtClient(credential, sub, **kw)
        self.features = FeatureClient(credential, sub, **kw)
        self.auth = AuthorizationManagementClient(credential, sub, **kw)

    def close(self) -> None:
        for client in (self.kv, self.rm, self.deploy, self.features, self.auth):
            client.close()


@pytest.fixture
def quick(fresh_sim: RunningSimulator) -> RunningSimulator:
    fresh_sim.control.settings(
        lro_retry_after=0,
        vault_create_seconds=0.3,
        deployment_seconds=0.3,
        provider_registration_seconds=0,
        feature_registration_seconds=0,
    )
    return fresh_sim


@pytest.fixture
def admin(quick: RunningSimulator) -> Iterator[Clients]:
    clients = Clients(quick, "keyvault-admin")
    yield clients
    clients.close()


@pytest.fixture
def pp_admin(quick: RunningSimulator) -> Iterator[Clients]:
    clients = Clients(quick, "powerplatform-admin")
    yield clients
    clients.close()


def vault_body(sim: RunningSimulator, **props: Any) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {
            "tenantId": sim.endpoints["tenant_id"],
            "sku": {"family": "A", "name": "standard"},
            **props,
        },
    }


def policy_template(
    vault_id: str, resource_type: str = "Microsoft.PowerPlatform/enterprisePolicies"
) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"policyName": {"type": "string"}, "geo": {"type": "string", "defaultValue": "europe"}},
        "resources": [
            {
                "type": resource_type,
                "apiVersion": "2020-10-30",
                "name": "[parameters('policyName')]",
                "location": "[parameters('geo')]",
                "kind": "Encryption",
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "encryption": {"state": "Enabled", "keyVault": {"id": vault_id, "key": {"name": "cmk"}}},
                    "networkInjection": None,
                },
            }
        ],
    }


def test_vault_lifecycle_with_lro_polling(admin: Clients, quick: RunningSimulator) -> None:
    since = quick.control.last_seq()
    vault = admin.kv.vaults.begin_create_or_update(
        "rg-cmk", "kv-sdk", vault_body(quick, enablePurgeProtection=True, softDeleteRetentionInDays=7)
    ).result()
    polls = quick.control.requests(since=since, operation="arm.vault_operation_status")
    assert len(polls) >= 2  # InProgress at least once, then Succeeded
    assert vault.properties.provisioning_state == "Succeeded"
    assert vault.properties.vault_uri.startswith("https://127.0.0.1:")
    updated = admin.kv.vaults.update("rg-cmk", "kv-sdk", {"properties": {"enableRbacAuthorization": True}})
    assert updated.properties.enable_rbac_authorization is True
    entry = {
        "tenantId": quick.endpoints["tenant_id"],
        "objectId": str(uuid.uuid4()),
        "permissions": {"keys": ["get"]},
    }
    with pytest.raises(HttpResponseError):
        admin.kv.vaults.update_access_policy("rg-cmk", "kv-sdk", "add", {"properties": {}})
    result = admin.kv.vaults.update_access_policy(
        "rg-cmk", "kv-sdk", "add", {"properties": {"accessPolicies": [entry]}}
    )
    assert result.properties.access_policies[0].permissions.keys_property == ["get"]
    assert {v.name for v in admin.kv.vaults.list_by_resource_group("rg-cmk")} == {"kv-cmk-demo", "kv-sdk"}
    assert {v.name for v in admin.kv.vaults.list_by_subscription()} == {"kv-cmk-demo", "kv-sdk"}
    with pytest.raises(ResourceNotFoundError) as missing:
        admin.kv.vaults.get("rg-cmk", "kv-missing")
    assert missing.value.error is not None and missing.value.error.code == "ResourceNotFound"


def test_soft_delete_and_purge_protection_rules(admin: Clients, quick: RunningSimulator) -> None:
    with pytest.raises(HttpResponseError) as off:
        admin.kv.vaults.update("rg-cmk", "kv-cmk-demo", {"properties": {"enablePurgeProtection": False}})
    assert off.value.status_code == 400
    admin.kv.vaults.delete("rg-cmk", "kv-cmk-demo")
    deleted = admin.kv.vaults.get_deleted("kv-cmk-demo", "westeurope")
    assert deleted.properties.purge_protection_enabled is True
    assert [v.name for v in admin.kv.vaults.list_deleted()] == ["kv-cmk-demo"]
    with pytest.raises(HttpResponseError) as refused:
        admin.kv.vaults.begin_purge_deleted("kv-cmk-demo", "westeurope").result()
    assert refused.value.error is not None and refused.value.error.code == "MethodNotAllowed"
    admin.kv.vaults.begin_create_or_update("rg-cmk", "kv-plain", vault_body(quick)).result()
    admin.kv.vaults.delete("rg-cmk", "kv-plain")
    admin.kv.vaults.begin_purge_deleted("kv-plain", "westeurope").result()
    assert [v.name for v in admin.kv.vaults.list_deleted()] == ["kv-cmk-demo"]


def test_throttling_429_is_retried_by_the_sdk(admin: Clients, quick: RunningSimulator) -> None:
    quick.control.add_fault(service="arm", status=429, code="TooManyRequests", retry_after=1, count=2)
    started = time.monotonic()
    assert admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").name == "kv-cmk-demo"
    assert time.monotonic() - started >= 1.9
    assert quick.control.faults()[0]["hits"] == 2


def test_forbidden_until_reader_is_granted(
    admin: Clients, pp_admin: Clients, quick: RunningSimulator
) -> None:
    with pytest.raises(HttpResponseError) as denied:
        pp_admin.kv.vaults.get("rg-cmk", "kv-cmk-demo")
    assert denied.value.status_code == 403 and denied.value.error is not None
    assert denied.value.error.code == "AuthorizationFailed"
    vault_id = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").id
    pp_oid = quick.identity("powerplatform-admin")["object_id"]
    params = {
        "properties": {
            "roleDefinitionId": f"/subscriptions/{admin.sub}{ROLE_DEFINITIONS}{READER}",
            "principalId": pp_oid,
            "principalType": "ServicePrincipal",
        }
    }
    name = str(uuid.uuid4())
    created = admin.auth.role_assignments.create(vault_id, name, params)
    assert created.principal_id == pp_oid and created.scope.lower() == vault_id.lower()
    assert pp_admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").name == "kv-cmk-demo"
    with pytest.raises(ResourceExistsError) as dup:
        admin.auth.role_assignments.create(vault_id, str(uuid.uuid4()), params)
    assert dup.value.error is not None and dup.value.error.code == "RoleAssignmentExists"
    found = list(admin.auth.role_assignments.list_for_scope(vault_id, filter=f"principalId eq '{pp_oid}'"))
    assert [ra.name for ra in found] == [name]
    assert admin.auth.role_assignments.get(vault_id, name).role_definition_id.endswith(READER)
    admin.auth.role_assignments.delete(vault_id, name)
    with pytest.raises(HttpResponseError):
        pp_admin.kv.vaults.get("rg-cmk", "kv-cmk-demo")


def test_role_definitions(admin: Clients) -> None:
    scope = f"/subscriptions/{admin.sub}"
    readers = list(admin.auth.role_definitions.list(scope, filter="roleName eq 'Reader'"))
    assert [r.name for r in readers] == [READER] and readers[0].permissions[0].actions == ["*/read"]
    user = admin.auth.role_definitions.get(scope, "e147488a-f6f5-4113-8e2d-b22465e65bf6")
    assert user.role_name == "Key Vault Crypto Service Encryption User"
    assert "Microsoft.KeyVault/vaults/keys/wrap/action" in user.permissions[0].data_actions
    owner = admin.auth.role_definitions.get(scope, "8e3af657-a8ff-443c-a75c-2fe8c4bcb635")
    assert owner.permissions[0].actions == ["*"] and owner.permissions[0].data_actions == []


def test_resource_groups_providers_and_features(admin: Clients, quick: RunningSimulator) -> None:
    quick.control.settings(provider_registration_seconds=60, feature_registration_seconds=60)
    assert admin.rm.providers.get("Microsoft.PowerPlatform").registration_state == "NotRegistered"
    assert admin.rm.providers.register("Microsoft.PowerPlatform").registration_state == "Registering"
    feature = admin.features.features.register("Microsoft.PowerPlatform", "enterprisePoliciesPreview")
    assert feature.properties.state == "Registering"
    quick.control.advance(61)
    provider = admin.rm.providers.get("microsoft.powerplatform")
    assert provider.registration_state == "Registered"
    geos = next(t for t in provider.resource_types if t.resource_type == "enterprisePolicies").locations
    assert "europe" in geos and "unitedstates" in geos and len(geos) == 18
    assert admin.features.features.get(
        "Microsoft.PowerPlatform", "enterprisePoliciesPreview"
    ).properties.state == ("Registered")
    admin.rm.resource_groups.create_or_update("rg-sdk", {"location": "westeurope"})
    assert admin.rm.resource_groups.check_existence("rg-sdk") is True
    assert {g.name for g in admin.rm.resource_groups.list()} == {"rg-cmk", "rg-sdk"}
    admin.rm.resource_groups.begin_delete("rg-sdk").result()
    assert admin.rm.resource_groups.check_existence("rg-sdk") is False


def test_deployment_creates_a_policy_with_system_id_and_identity(
    admin: Clients, quick: RunningSimulator
) -> None:
    admin.rm.providers.register("Microsoft.PowerPlatform")
    vault_id = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").id
    body = {
        "properties": {
            "mode": "Incremental",
            "template": policy_template(vault_id),
            "parameters": {"policyName": {"value": "ep-sdk"}},
        }
    }
    deployment = admin.deploy.deployments.begin_create_or_update("rg-cmk", "EPDeployment", body).result()
    assert deployment.properties.provisioning_state == "Succeeded"
    policy_id = deployment.properties.output_resources[0].id
    policy = admin.rm.resources.get_by_id(policy_id, api_version=PP_API)
    assert policy.properties["systemId"].startswith("/regions/europe/providers/Microsoft.PowerPlatform/")
    assert policy.identity.principal_id and policy.identity.tenant_id == quick.endpoints["tenant_id"]
    assert policy.kind == "Encryption" and policy.location == "europe"
    listed = list(admin.deploy.deployments.list_by_resource_group("rg-cmk"))
    assert [d.name for d in listed] == ["EPDeployment"]


def test_deployment_of_an_unsupported_resource_type_fails(admin: Clients) -> None:
    template = policy_template("/x", resource_type="Microsoft.Storage/storageAccounts")
    body = {
        "properties": {
            "mode": "Incremental",
            "template": template,
            "parameters": {"policyName": {"value": "s"}},
        }
    }
    with pytest.raises(HttpResponseError) as failed:
        admin.deploy.deployments.begin_create_or_update("rg-cmk", "bad", body).result()
    assert failed.value.error is not None and failed.value.error.code == "UnsupportedResourceType"
    assert admin.deploy.deployments.get("rg-cmk", "bad").properties.provisioning_state == "Failed"


def deployment_body(vault_id: str, name: str, geo: str = "europe") -> dict[str, Any]:
    return {
        "properties": {
            "mode": "Incremental",
            "template": policy_template(vault_id),
            "parameters": {"policyName": {"value": name}, "geo": {"value": geo}},
        }
    }


def test_deployment_registers_the_provider_as_arm_does(admin: Clients, quick: RunningSimulator) -> None:
    quick.control.settings(provider_registration_seconds=0.5)
    assert admin.rm.providers.get("Microsoft.PowerPlatform").registration_state == "NotRegistered"
    vault_id = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").id
    deployment = admin.deploy.deployments.begin_create_or_update(
        "rg-cmk", "d1", deployment_body(vault_id, "ep-auto")
    ).result()
    assert deployment.properties.provisioning_state == "Succeeded"
    assert admin.rm.providers.get("Microsoft.PowerPlatform").registration_state == "Registered"
    assert deployment.properties.output_resources[0].id.endswith("/enterprisePolicies/ep-auto")


def test_deployment_without_the_right_to_register_fails_with_missing_registration(
    admin: Clients, pp_admin: Clients, quick: RunningSimulator
) -> None:
    group_id = admin.rm.resource_groups.get("rg-cmk").id
    contributor = next(iter(admin.auth.role_definitions.list(group_id, filter="roleName eq 'Contributor'")))
    admin.auth.role_assignments.create(
        group_id,
        str(uuid.uuid4()),
        {
            "properties": {
                "roleDefinitionId": contributor.id,
                "principalId": quick.identity("powerplatform-admin")["object_id"],
                "principalType": "ServicePrincipal",
            }
        },
    )
    vault_id = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").id
    with pytest.raises(HttpResponseError) as unregistered:
        pp_admin.deploy.deployments.begin_create_or_update(
            "rg-cmk", "d1", deployment_body(vault_id, "ep-x")
        ).result()
    error = unregistered.value.error
    assert error is not None and error.code == "DeploymentFailed"
    assert error.details[0].code == "MissingSubscriptionRegistration"
    assert admin.rm.providers.get("Microsoft.PowerPlatform").registration_state == "NotRegistered"


def test_deployment_reports_policy_errors(admin: Clients) -> None:
    vault_id = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").id
    with pytest.raises(HttpResponseError) as bad_geo:
        admin.deploy.deployments.begin_create_or_update(
            "rg-cmk", "d2", deployment_body(vault_id, "ep-x", geo="westeurope")
        ).result()
    assert bad_geo.value.error is not None
    assert bad_geo.value.error.details[0].code == "LocationNotAvailableForResourceType"
