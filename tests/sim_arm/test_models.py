"""ARM models without HTTP: RBAC, registrations, vault rules, policies, templates, deployments, scenarios."""

from __future__ import annotations

import json
from typing import Any

import pytest

from simulator.arm.rbac import action_matches, resolve_role, scope_covers
from simulator.arm.templates import TemplateError, plan
from simulator.core.errors import SimError
from simulator.scenarios.demo import KEYVAULT_ADMIN, POWERPLATFORM_ADMIN, SUBSCRIPTION_ID, build_demo
from simulator.world import World

SUB = f"/subscriptions/{SUBSCRIPTION_ID}"
RG = f"{SUB}/resourceGroups/rg-cmk"
VAULT_ID = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
KV_ADMIN = KEYVAULT_ADMIN["object_id"]
PP_ADMIN = POWERPLATFORM_ADMIN["object_id"]


def policy_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": "europe",
        "kind": "Encryption",
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "encryption": {"state": "Enabled", "keyVault": {"id": VAULT_ID, "key": {"name": "cmk"}}}
        },
    }
    body.update(overrides)
    return body


@pytest.fixture
def world() -> World:
    return World(build_demo())


@pytest.fixture
def registered(world: World) -> World:
    world.settings.provider_registration_seconds = 0
    world.arm.register_provider("Microsoft.PowerPlatform")
    return world


class FakeBap:
    """Stands in for BapState: reports given system ids as linked."""

    def __init__(self, linked: set[str]) -> None:
        self.linked = linked

    def environments_linked_to(self, system_id: str) -> list[str]:
        return ["env-1"] if system_id in self.linked else []

    def tick(self, now: float) -> None:
        pass


# --- RBAC ------------------------------------------------------------------------------------
def test_action_wildcards_and_scope_inheritance() -> None:
    assert action_matches("*/read", "Microsoft.PowerPlatform/enterprisePolicies/read")
    assert not action_matches("*/read", "Microsoft.PowerPlatform/enterprisePolicies/write")
    assert action_matches("Microsoft.KeyVault/vaults/keys/*", "microsoft.keyvault/vaults/keys/wrap/action")
    assert scope_covers(SUB, VAULT_ID.replace("resourceGroups", "resourcegroups").upper())
    assert not scope_covers(VAULT_ID, RG)
    assert not scope_covers(f"{RG}/providers/x/y/ab", f"{RG}/providers/x/y/abc")


def test_owner_on_subscription_grants_actions_but_no_data_actions(world: World) -> None:
    assert world.arm.has_action(KV_ADMIN, VAULT_ID, "Microsoft.KeyVault/vaults/write")
    assert world.arm.has_action(KV_ADMIN, VAULT_ID.lower(), "Microsoft.Authorization/roleAssignments/write")
    assert not world.arm.has_data_action(KV_ADMIN, VAULT_ID, "Microsoft.KeyVault/vaults/keys/read")
    assert not world.arm.has_action(PP_ADMIN, RG, "Microsoft.Resources/subscriptions/resourceGroups/read")


def test_builtin_role_permissions() -> None:
    contributor = resolve_role("Contributor")
    encryption_user = resolve_role("e147488a-f6f5-4113-8e2d-b22465e65bf6")
    officer = resolve_role(
        f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
    )
    assert contributor and encryption_user and officer
    assert contributor.allows("Microsoft.KeyVault/vaults/write")
    assert not contributor.allows("Microsoft.Authorization/roleAssignments/write")
    assert encryption_user.allows_data("Microsoft.KeyVault/vaults/keys/unwrap/action")
    assert not encryption_user.allows_data("Microsoft.KeyVault/vaults/keys/create/action")
    assert officer.allows_data("Microsoft.KeyVault/vaults/keys/create/action")
    assert not officer.allows_data("Microsoft.KeyVault/vaults/secrets/getSecret/action")


def test_role_assignment_rules(world: World) -> None:
    arm = world.arm
    reader = f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
    body = {"properties": {"roleDefinitionId": reader, "principalId": PP_ADMIN}}
    name = "11111111-2222-4333-8444-555555555555"
    _, created = arm.create_role_assignment(RG, name, body, KV_ADMIN)
    assert created and arm.has_action(PP_ADMIN, VAULT_ID, "Microsoft.KeyVault/vaults/read")
    assert arm.create_role_assignment(RG, name, body, KV_ADMIN)[1] is False  # same name, same content
    with pytest.raises(SimError) as dup:
        arm.create_role_assignment(RG, "21111111-2222-4333-8444-555555555555", body, KV_ADMIN)
    assert (dup.value.status, dup.value.code) == (409, "RoleAssignmentExists")
    ghost = {
        "properties": {"roleDefinitionId": reader, "principalId": "99999999-0000-4000-8000-000000000000"}
    }
    with pytest.raises(SimError) as missing:
        arm.create_role_assignment(RG, "31111111-2222-4333-8444-555555555555", ghost, KV_ADMIN)
    assert missing.value.code == "PrincipalNotFound"
    assert [ra.name for ra in arm.list_role_assignments(VAULT_ID, f"principalId eq '{PP_ADMIN}'")] == [name]
    assert arm.list_role_assignments(SUB, f"atScope() and principalId eq '{PP_ADMIN}'") == []
    arm.delete_role_assignment(RG, name)
    assert not arm.has_action(PP_ADMIN, VAULT_ID, "Microsoft.KeyVault/vaults/read")


# --- registrations ------------------------------------------------------------------------------
def test_provider_and_feature_registration_follow_simulated_time(world: World) -> None:
    world.settings.provider_registration_seconds = 30
    assert world.arm.provider_state("microsoft.powerplatform") == "NotRegistered"
    world.arm.register_provider("Microsoft.PowerPlatform")
    assert world.arm.provider_state("Microsoft.PowerPlatform") == "Registering"
    world.clock.advance(31)
    assert world.arm.provider_state("Microsoft.PowerPlatform") == "Registered"
    assert world.arm.provider_json("Microsoft.PowerPlatform")["resourceTypes"][0]["apiVersions"] == [
        "2020-10-30",
        "2020-10-30-preview",
    ]
    world.arm.register_feature("Microsoft.PowerPlatform", "enterprisePoliciesPreview")
    assert world.arm.feature_json("Microsoft.PowerPlatform", "enterprisePoliciesPreview")["properties"][
        "state"
    ] == ("Registering")
    with pytest.raises(SimError) as err:
        world.arm.provider("Microsoft.Nope")
    assert err.value.code == "InvalidResourceNamespace"


# --- vaults -------------------------------------------------------------------------------------
def test_vault_access_policies_and_permissions(world: World) -> None:
    vault = world.arm.find_vault("KV-CMK-DEMO")
    assert vault is not None and world.arm.find_vault_by_id(VAULT_ID.upper()) is vault
    assert {"wrapkey", "unwrapkey", "get", "purge"} <= vault.key_permissions_for(KV_ADMIN)
    entry = {"tenantId": world.tenant_id, "objectId": PP_ADMIN, "permissions": {"keys": ["get"]}}
    world.arm.update_vault_access_policy(
        "rg-cmk", "kv-cmk-demo", "add", {"properties": {"accessPolicies": [entry]}}
    )
    entry["permissions"] = {"keys": ["wrapKey"]}
    world.arm.update_vault_access_policy(
        "rg-cmk", "kv-cmk-demo", "add", {"properties": {"accessPolicies": [entry]}}
    )
    assert vault.key_permissions_for(PP_ADMIN) == {"get", "wrapkey"}
    world.arm.update_vault_access_policy(
        "rg-cmk", "kv-cmk-demo", "replace", {"properties": {"accessPolicies": [entry]}}
    )
    assert vault.key_permissions_for(PP_ADMIN) == {"wrapkey"}
    world.arm.update_vault_access_policy(
        "rg-cmk", "kv-cmk-demo", "remove", {"properties": {"accessPolicies": [entry]}}
    )
    assert vault.key_permissions_for(PP_ADMIN) == set()


def _new_vault(world: World, name: str = "kv-new", **props: Any) -> Any:
    body = {
        "location": "westeurope",
        "properties": {"tenantId": world.tenant_id, "sku": {"family": "A", "name": "standard"}, **props},
    }
    return world.arm.create_or_update_vault("rg-cmk", name, body)


def test_vault_one_way_switches_and_validation(world: World) -> None:
    vault, created, op = _new_vault(world, enablePurgeProtection=True, softDeleteRetentionInDays=7)
    assert created and vault.enable_soft_delete and vault.vault_uri.endswith("/")
    for bad in ({"enableSoftDelete": False}, {"enablePurgeProtection": False}):
        with pytest.raises(SimError) as err:
            world.arm.update_vault("rg-cmk", "kv-new", {"properties": bad})
        assert err.value.status == 400
    for props in ({"softDeleteRetentionInDays": 3}, {"tenantId": None}):
        with pytest.raises(SimError):
            _new_vault(world, "kv-other", **props)
    with pytest.raises(SimError) as name_err:
        _new_vault(world, "9-bad--name")
    assert name_err.value.code == "VaultNameNotValid"
    with pytest.raises(SimError) as sku_err:
        world.arm.create_or_update_vault(
            "rg-cmk",
            "kv-sku",
            {
                "location": "westeurope",
                "properties": {"tenantId": world.tenant_id, "sku": {"family": "A", "name": "gold"}},
            },
        )
    assert sku_err.value.status == 400


def test_vault_create_operation_settles_after_vault_create_seconds(world: World) -> None:
    world.settings.vault_create_seconds = 10
    vault, _, op = _new_vault(world)
    assert world.arm.operation_status(op.id)[1] == "InProgress"
    assert vault.provisioning_state(world.now()) == "RegisteringDns"
    world.clock.advance(11)
    assert world.arm.operation_status(op.id)[1] == "Succeeded"


def test_soft_delete_purge_protection_and_scheduled_purge(world: World) -> None:
    _new_vault(world, enablePurgeProtection=True, softDeleteRetentionInDays=7)
    assert world.arm.delete_vault("rg-cmk", "kv-new") is True
    assert world.arm.find_vault("kv-new") is None
    deleted = world.arm.get_deleted_vault("westeurope", "kv-new")
    assert deleted.deleted and deleted.scheduled_purge_at is not None
    with pytest.raises(SimError) as refused:
        world.arm.purge_deleted_vault("westeurope", "kv-new")
    assert refused.value.code == "MethodNotAllowed"
    with pytest.raises(SimError) as conflict:
        _new_vault(world)
    assert conflict.value.code == "ConflictError"
    world.clock.advance(8 * 86400)
    world.tick()
    assert "kv-new" not in world.arm.deleted_vaults
    _new_vault(world)  # the name is free again


def test_purge_without_protection_and_recover(world: World) -> None:
    _new_vault(world)
    world.arm.delete_vault("rg-cmk", "kv-new")
    _new_vault(world, createMode="recover")
    assert world.arm.find_vault("kv-new") is not None
    world.arm.delete_vault("rg-cmk", "kv-new")
    world.arm.purge_deleted_vault("westeurope", "kv-new")
    assert world.arm.deleted_vaults == {}


# --- enterprise policies ----------------------------------------------------------------------------
def test_policy_refused_until_the_provider_is_registered(world: World) -> None:
    with pytest.raises(SimError) as err:
        world.arm.put_policy("rg-cmk", "ep1", policy_body(), KV_ADMIN)
    assert (err.value.status, err.value.code) == (409, "MissingSubscriptionRegistration")
    assert "'Microsoft.PowerPlatform'" in err.value.message


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"kind": "Bogus"}, "InvalidEnterprisePolicyKind"),
        ({"location": "westeurope"}, "LocationNotAvailableForResourceType"),
        (
            {"properties": {"encryption": {"keyVault": {"id": "/nope", "key": {"name": "cmk"}}}}},
            "InvalidKeyVaultId",
        ),
        ({"properties": {"encryption": {"keyVault": {"id": VAULT_ID, "key": {}}}}}, "InvalidKeyName"),
        ({"identity": {"type": "None"}}, "InvalidEnterprisePolicyIdentity"),
    ],
)
def test_policy_validation(registered: World, override: dict[str, Any], code: str) -> None:
    with pytest.raises(SimError) as err:
        registered.arm.put_policy("rg-cmk", "ep1", policy_body(**override), KV_ADMIN)
    assert (err.value.status, err.value.code) == (400, code)


def test_policy_identity_system_id_and_delay(registered: World) -> None:
    registered.settings.policy_identity_delay_seconds = 60
    policy, created = registered.arm.put_policy("rg-cmk", "ep1", policy_body(), KV_ADMIN)
    assert created and policy.system_id.startswith(
        "/regions/europe/providers/Microsoft.PowerPlatform/enterprisePolicies/"
    )
    identity = registered.identities.by_object_id(policy.principal_id or "")
    assert identity is not None and identity.kind == "ManagedIdentity" and not identity.can_sign_in
    shown = registered.arm.policy_json(policy)
    assert "principalId" not in shown["identity"] and not policy.identity_visible(registered.now())
    registered.clock.advance(61)
    shown = registered.arm.policy_json(policy)
    assert shown["identity"]["principalId"] == policy.principal_id
    assert shown["identity"]["tenantId"] == registered.tenant_id
    assert registered.arm.find_policy_by_system_id(policy.system_id.upper()) is policy
    again, created_again = registered.arm.put_policy("rg-cmk", "ep1", policy_body(tags={"a": "b"}), KV_ADMIN)
    assert again is policy and not created_again and policy.tags == {"a": "b"}


def test_linked_policy_cannot_be_deleted_or_changed(registered: World) -> None:
    policy, _ = registered.arm.put_policy("rg-cmk", "ep1", policy_body(), KV_ADMIN)
    registered.bap = FakeBap({policy.system_id})  # type: ignore[assignment]
    with pytest.raises(SimError) as delete_err:
        registered.arm.delete_policy("rg-cmk", "ep1")
    assert (delete_err.value.status, delete_err.value.code) == (400, "EnterprisePolicyDeleteNotAllowed")
    assert delete_err.value.body()["error"]["namespace"] == "Quartz.EnterprisePolicy"
    new_key = {"properties": {"encryption": {"keyVault": {"key": {"name": "other"}}}}}
    with pytest.raises(SimError) as update_err:
        registered.arm.patch_policy("rg-cmk", "ep1", new_key)
    assert update_err.value.code == "EnterprisePolicyUpdateNotAllowed"
    registered.arm.patch_policy("rg-cmk", "ep1", {"tags": {"owner": "me"}})
    assert policy.tags == {"owner": "me"} and policy.key_name == "cmk"
    registered.bap = FakeBap(set())  # type: ignore[assignment]
    registered.arm.patch_policy("rg-cmk", "ep1", new_key)
    assert policy.key_name == "other"
    principal = policy.principal_id or ""
    assert registered.arm.delete_policy("rg-cmk", "ep1") is True
    assert registered.identities.by_object_id(principal) is None
    assert registered.arm.delete_policy("rg-cmk", "ep1") is False


# --- templates and deployments -------------------------------------------------------------------------
def _template(
    resource_type: str = "Microsoft.PowerPlatform/enterprisePolicies", **extra: Any
) -> dict[str, Any]:
    resource = {
        "type": resource_type,
        "apiVersion": "2020-10-30",
        "name": "[parameters('policyName')]",
        **policy_body(),
    }
    resource.update(extra)
    return {
        "parameters": {"policyName": {"type": "string"}, "geo": {"type": "string", "defaultValue": "europe"}},
        "resources": [resource],
        "outputs": {"name": {"type": "string", "value": "[parameters('policyName')]"}},
    }


def test_template_plan_evaluates_parameters_and_refuses_the_rest() -> None:
    planned = plan(_template(location="[parameters('geo')]"), {"policyName": {"value": "ep1"}})
    assert planned.resources[0].name == "ep1" and planned.resources[0].body["location"] == "europe"
    assert planned.outputs == {"name": {"type": "String", "value": "ep1"}}
    cases = [
        (
            _template("Microsoft.Storage/storageAccounts"),
            {"policyName": {"value": "x"}},
            "UnsupportedResourceType",
        ),
        (_template(location="[resourceGroup().location]"), {"policyName": {"value": "x"}}, "InvalidTemplate"),
        (_template(), {}, "InvalidTemplate"),
        (_template(), {"policyName": {"value": "x"}, "extra": {"value": 1}}, "InvalidTemplate"),
        (_template(apiVersion="2021-01-01"), {"policyName": {"value": "x"}}, "NoRegisteredProviderFound"),
    ]
    for template, params, code in cases:
        with pytest.raises(TemplateError) as err:
            plan(template, params)
        assert err.value.code == code


def test_deployment_executes_after_deployment_seconds(registered: World) -> None:
    registered.settings.deployment_seconds = 5
    body = {
        "properties": {
            "mode": "Incremental",
            "template": _template(),
            "parameters": {"policyName": {"value": "ep1"}},
        }
    }
    deployment, created = registered.arm.create_deployment("rg-cmk", "EPDeployment", body, KV_ADMIN)
    assert created and deployment.provisioning_state(registered.now()) in ("Accepted", "Running")
    assert (
        registered.arm.find_policy_by_id(f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep1")
        is None
    )
    with pytest.raises(SimError) as active:
        registered.arm.create_deployment("rg-cmk", "EPDeployment", body, KV_ADMIN)
    assert active.value.code == "DeploymentActive"
    registered.clock.advance(6)
    registered.tick()
    assert deployment.state == "Succeeded" and deployment.outputs["name"]["value"] == "ep1"
    assert registered.arm.find_policy_by_id(deployment.output_resources[0]) is not None


def test_deployment_registers_the_provider_then_fails_with_policy_errors_and_missing_permissions(
    world: World,
) -> None:
    world.settings.deployment_seconds = 0
    world.settings.provider_registration_seconds = 2
    bad = {
        "properties": {"template": _template(kind="Bogus"), "parameters": {"policyName": {"value": "ep1"}}}
    }
    good = {"properties": {"template": _template(), "parameters": {"policyName": {"value": "ep1"}}}}
    registering, _ = world.arm.create_deployment("rg-cmk", "d1", good, KV_ADMIN)
    world.clock.advance(1)
    world.tick()
    assert registering.state in ("Accepted", "Running")
    assert world.arm.provider_state("Microsoft.PowerPlatform") == "Registering"
    world.clock.advance(1.5)
    world.tick()
    assert registering.state == "Succeeded"
    assert world.arm.provider_state("Microsoft.PowerPlatform") == "Registered"
    invalid, _ = world.arm.create_deployment("rg-cmk", "d2", bad, KV_ADMIN)
    forbidden, _ = world.arm.create_deployment(
        "rg-cmk",
        "d3",
        {"properties": {"template": _template(), "parameters": {"policyName": {"value": "ep3"}}}},
        PP_ADMIN,
    )
    world.clock.advance(1)
    world.tick()
    assert invalid.error and invalid.error["details"][0]["code"] == "InvalidEnterprisePolicyKind"
    assert forbidden.error and forbidden.error["details"][0]["code"] == "AuthorizationFailed"


# --- scenario and snapshot ---------------------------------------------------------------------------------
def test_scenario_policies_are_granted_and_visible_at_once() -> None:
    scenario = build_demo()
    scenario["providers"] = {"Microsoft.PowerPlatform": "Registered"}
    scenario["vaults"].append({**scenario["vaults"][0], "name": "kv-rbac", "enable_rbac_authorization": True})
    scenario["enterprise_policies"] = [
        {
            "name": "ep-ap",
            "resource_group": "rg-cmk",
            "location": "europe",
            "vault": "kv-cmk-demo",
            "key": "cmk",
            "grant": "access_policy",
            "reader_for": ["powerplatform-admin"],
        },
        {
            "name": "ep-rbac",
            "resource_group": "rg-cmk",
            "location": "unitedstates",
            "vault": "kv-rbac",
            "key": "cmk",
            "key_version": "abc",
            "grant": "rbac",
        },
    ]
    world = World(scenario)
    ap = world.arm.find_policy_by_id(f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-ap")
    rbac = world.arm.find_policy_by_id(f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-rbac")
    assert ap and rbac and ap.identity_visible(world.now()) and rbac.key_version == "abc"
    vault = world.arm.find_vault("kv-cmk-demo")
    assert vault and vault.key_permissions_for(ap.principal_id or "") == {"get", "wrapkey", "unwrapkey"}
    rbac_vault = world.arm.find_vault("kv-rbac")
    assert rbac_vault and world.arm.has_data_action(
        rbac.principal_id or "", rbac_vault.id + "/keys/cmk", "Microsoft.KeyVault/vaults/keys/wrap/action"
    )
    assert world.arm.has_action(PP_ADMIN, ap.id, "Microsoft.PowerPlatform/enterprisePolicies/read")
    assert not world.arm.has_action(PP_ADMIN, rbac.id, "Microsoft.PowerPlatform/enterprisePolicies/read")
    dumped = json.loads(json.dumps(world.arm.snapshot()))
    assert {p["name"] for p in dumped["enterprise_policies"]} == {"ep-ap", "ep-rbac"}
    assert dumped["providers"]["Microsoft.PowerPlatform"] == "Registered"


def test_resource_group_delete_removes_its_resources(registered: World) -> None:
    registered.arm.put_policy("rg-cmk", "ep1", policy_body(), KV_ADMIN)
    registered.arm.delete_resource_group("rg-cmk")
    assert registered.arm.resource_groups == {} and registered.arm.policies == {}
    assert "kv-cmk-demo" in registered.arm.deleted_vaults
    with pytest.raises(SimError) as err:
        registered.arm.get_resource_group("rg-cmk")
    assert err.value.code == "ResourceGroupNotFound"
