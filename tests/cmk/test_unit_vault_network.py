"""The vault network rule: the service reaches a firewalled or private vault only through the trusted bypass."""

from __future__ import annotations

import pytest

from cmk.clients.keyvault import vault_info
from cmk.domain.models import PrivateEndpointInfo
from cmk.inventory.risks import vault_risks
from cmk.plans.lockdown import plan_unlock
from cmk.preflight import check_vault, check_vault_network
from tests.cmk.factories import POLICY_ID, VAULT_ID, policy, vault

BLOCKS = "VAULT_NETWORK_BLOCKS_SERVICE"
ENDPOINT = PrivateEndpointInfo(f"{VAULT_ID}/privateEndpointConnections/pe", "/pe", "Approved")


def codes(findings: list) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in findings]


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"public_network_access": "Enabled", "network_default_action": "Allow", "network_bypass": "None"},
        {"network_default_action": "Allow", "network_bypass": "None", "ip_rules": ("203.0.113.7",)},
    ],
    ids=["open", "open-bypass-off", "allow-with-ip-rules"],
)
def test_an_open_vault_raises_nothing(settings: dict) -> None:
    assert check_vault_network(vault(**settings)) == []
    assert check_vault(vault(**settings)) == []


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (
            {"public_network_access": "Disabled", "network_bypass": "None"},
            "public network access is Disabled",
        ),
        ({"network_default_action": "Deny", "network_bypass": "None"}, "the firewall denies by default"),
        (
            {
                "public_network_access": "disabled",
                "network_default_action": "deny",
                "network_bypass": "none",
                "private_endpoints": (ENDPOINT,),
            },
            "public network access is Disabled and the firewall denies",
        ),
    ],
    ids=["public-disabled", "firewall-deny", "both-with-private-endpoint"],
)
def test_a_restricted_vault_without_the_bypass_blocks(settings: dict, said: str) -> None:
    findings = check_vault(vault(**settings))
    assert codes(findings) == [(BLOCKS, "blocking")]
    finding = findings[0]
    assert finding.target == VAULT_ID and said in finding.message and "locked" in finding.message
    assert "--bypass AzureServices" in finding.remediation and "kv-cmk-demo" in finding.remediation
    assert "Allow trusted Microsoft services to bypass this firewall" in finding.remediation


def test_the_bypass_makes_a_private_vault_supported() -> None:
    findings = check_vault(
        vault(public_network_access="Disabled", network_bypass="AzureServices", private_endpoints=(ENDPOINT,))
    )
    assert codes(findings) == [("VAULT_NETWORK_TRUSTED_BYPASS", "info")]
    assert "1 private endpoint connection(s)" in findings[0].message and "supported" in findings[0].message


def test_an_unset_bypass_passes_with_a_warning() -> None:
    findings = check_vault(vault(network_default_action="Deny"))
    assert codes(findings) == [("VAULT_NETWORK_BYPASS_IMPLICIT", "warning")]


def test_the_inventory_grades_a_cut_off_vault_high() -> None:
    risks = vault_risks(vault(public_network_access="Disabled", network_bypass="None"), ("env-1",))
    assert [(r.code, r.severity, r.environments) for r in risks] == [
        ("vault-network-blocks-service", "high", ("env-1",))
    ]
    assert vault_risks(vault(public_network_access="Disabled", network_bypass="AzureServices"), ()) == []


def test_unlock_refuses_while_the_network_keeps_the_service_out() -> None:
    args = ("CHG-U", "alice", policy(), POLICY_ID, [], [], [], [])
    blocked = plan_unlock(
        *args, explicit=False, vault=vault(network_default_action="Deny", network_bypass="None")
    )
    assert [f.code for f in blocked.blocking] == [BLOCKS]
    assert plan_unlock(*args, explicit=False, vault=vault()).blocking == []


def test_the_converter_reads_the_rest_shape() -> None:
    data = {
        "id": VAULT_ID,
        "name": "kv-cmk-demo",
        "properties": {
            "vaultUri": "https://127.0.0.1:1/",
            "enablePurgeProtection": True,
            "publicNetworkAccess": "Disabled",
            "networkAcls": {
                "bypass": "AzureServices",
                "defaultAction": "Deny",
                "ipRules": [{"value": "203.0.113.0/24"}],
                "virtualNetworkRules": [{"id": "/subnets/a", "ignoreMissingVnetServiceEndpoint": False}],
            },
            "privateEndpointConnections": [
                {
                    "id": f"{VAULT_ID}/privateEndpointConnections/pe",
                    "etag": "",
                    "properties": {
                        "privateEndpoint": {"id": "/pe"},
                        "privateLinkServiceConnectionState": {"status": "Approved"},
                        "provisioningState": "Succeeded",
                    },
                }
            ],
        },
    }
    info = vault_info(data)
    assert (info.public_network_access, info.network_default_action, info.network_bypass) == (
        "Disabled",
        "Deny",
        "AzureServices",
    )
    assert info.ip_rules == ("203.0.113.0/24",) and info.virtual_network_rules == ("/subnets/a",)
    assert info.private_endpoints == (ENDPOINT,)
    assert info.network_restricted and info.trusted_services_bypass
    bare = vault_info({"id": VAULT_ID, "properties": {}})
    assert not bare.network_restricted and bare.trusted_services_bypass and bare.private_endpoints == ()
