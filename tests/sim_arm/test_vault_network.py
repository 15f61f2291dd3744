"""Vault network rules and private endpoint connections through the real Key Vault management SDK, over HTTPS."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.keyvault.models import (
    IPRule,
    NetworkRuleSet,
    PrivateEndpointConnection,
    PrivateLinkServiceConnectionState,
    VaultPatchParameters,
    VaultPatchProperties,
    VirtualNetworkRule,
)

from simulator.testing import RunningSimulator
from tests.sim_arm.test_sdk import Clients, admin, quick  # noqa: F401 (fixtures)

SUBNET = "/subscriptions/s/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vn/subnets/kv"


def patch(clients: Clients, **props: object) -> object:
    """PATCH the demo vault's properties through the SDK."""
    return clients.kv.vaults.update(
        "rg-cmk", "kv-cmk-demo", VaultPatchParameters(properties=VaultPatchProperties(**props))
    )


def test_network_acls_round_trip_as_the_spec_shapes_them(admin: Clients) -> None:  # noqa: F811
    vault = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo")
    assert vault.properties.public_network_access == "Enabled"
    assert vault.properties.network_acls is None and vault.properties.private_endpoint_connections == []
    rules = NetworkRuleSet(
        bypass="None",
        default_action="Deny",
        ip_rules=[IPRule(value="203.0.113.0/24")],
        virtual_network_rules=[VirtualNetworkRule(id=SUBNET)],
    )
    patch(admin, network_acls=rules, public_network_access="Disabled")
    read = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").properties
    assert read.public_network_access == "Disabled"
    assert read.network_acls.bypass == "None" and read.network_acls.default_action == "Deny"
    assert [r.value for r in read.network_acls.ip_rules] == ["203.0.113.0/24"]
    assert [r.id for r in read.network_acls.virtual_network_rules] == [SUBNET]
    # the spec's defaults fill what a caller leaves out
    patch(admin, network_acls=NetworkRuleSet(default_action="deny"))
    acls = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").properties.network_acls
    assert (acls.bypass, acls.default_action, acls.ip_rules) == ("AzureServices", "Deny", [])


@pytest.mark.parametrize(
    "props",
    [
        {"publicNetworkAccess": "Off"},
        {"networkAcls": {"bypass": "Everyone"}},
        {"networkAcls": {"defaultAction": "Block"}},
        {"networkAcls": {"ipRules": [{"address": "1.2.3.4"}]}},
    ],
)
def test_invalid_network_settings_are_refused(admin: Clients, props: dict[str, object]) -> None:  # noqa: F811
    with pytest.raises(HttpResponseError) as refused:
        admin.kv.vaults.update("rg-cmk", "kv-cmk-demo", {"properties": props})
    assert refused.value.status_code == 400
    assert admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").properties.public_network_access == "Enabled"


def test_private_endpoint_connections(admin: Clients, quick: RunningSimulator) -> None:  # noqa: F811
    pec = admin.kv.private_endpoint_connections
    # privateEndpoint.id is read-only in the spec (Microsoft.Network owns the endpoint): the simulator names one
    sub = quick.endpoints["subscription_id"]
    endpoint = (
        f"/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.Network/privateEndpoints/pe-kv"
    )
    created = pec.put(
        "rg-cmk",
        "kv-cmk-demo",
        "pe-kv",
        PrivateEndpointConnection(
            {
                "properties": {
                    "privateLinkServiceConnectionState": {"status": "Approved", "description": "ok"},
                }
            }
        ),
    )
    assert created.name == "pe-kv" and created.type == "Microsoft.KeyVault/vaults/privateEndpointConnections"
    assert created.properties.private_endpoint.id == endpoint
    assert created.properties.provisioning_state == "Succeeded"
    items = admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").properties.private_endpoint_connections
    assert [
        (i.id.rsplit("/", 1)[-1], i.properties.private_link_service_connection_state.status) for i in items
    ] == [("pe-kv", "Approved")]
    rejected = pec.put(
        "rg-cmk",
        "kv-cmk-demo",
        "pe-kv",
        PrivateEndpointConnection(
            {
                "properties": {
                    "privateLinkServiceConnectionState": PrivateLinkServiceConnectionState(status="Rejected")
                }
            }
        ),
    )
    assert rejected.properties.private_link_service_connection_state.status == "Rejected"
    assert [c.name for c in pec.list_by_resource("rg-cmk", "kv-cmk-demo")] == ["pe-kv"]
    assert pec.get("rg-cmk", "kv-cmk-demo", "pe-kv").properties.private_endpoint.id == endpoint
    pec.begin_delete("rg-cmk", "kv-cmk-demo", "pe-kv").result()
    with pytest.raises(ResourceNotFoundError):
        pec.get("rg-cmk", "kv-cmk-demo", "pe-kv")
    assert admin.kv.vaults.get("rg-cmk", "kv-cmk-demo").properties.private_endpoint_connections == []


def test_scenario_network_settings_and_the_trusted_service_rule() -> None:
    from simulator.scenarios.demo import build_demo
    from simulator.world import World

    scenario = build_demo()
    scenario["vaults"][0].update(
        public_network_access="disabled",
        network_acls={"bypass": "None"},
        private_endpoints=[{"name": "pe-1"}, {"name": "pe-2", "status": "Pending"}],
    )
    world = World(scenario)
    vault = world.arm.find_vault("kv-cmk-demo")
    props = vault.to_json(world.now())["properties"]
    assert props["publicNetworkAccess"] == "Disabled"
    assert props["networkAcls"] == {
        "bypass": "None",
        "defaultAction": "Allow",
        "ipRules": [],
        "virtualNetworkRules": [],
    }
    states = [
        c["properties"]["privateLinkServiceConnectionState"]["status"]
        for c in props["privateEndpointConnections"]
    ]
    assert states == ["Approved", "Pending"]
    assert "public network access is Disabled" in (world.vault_network_problem(vault.id) or "")
    vault.public_network_access = "Enabled"
    assert world.vault_network_problem(vault.id) is None  # default action Allow: nothing to bypass
    vault.network_acls = {**props["networkAcls"], "defaultAction": "Deny"}
    assert "firewall denies" in (world.vault_network_problem(vault.id) or "")
    vault.network_acls["bypass"] = "AzureServices"
    assert world.vault_network_problem(vault.id) is None
