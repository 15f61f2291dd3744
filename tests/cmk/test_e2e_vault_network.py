"""KeyVaultService.get_vault reads the vault's network settings through the management SDK, and the preflight
judges them, against the simulator over HTTPS."""

from __future__ import annotations

from cmk.preflight import run_preflight
from tests.cmk.conftest import Services
from tests.support import set_vault_network

SUBNET = "/subscriptions/s/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vn/subnets/kv"


def test_get_vault_reads_public_access_firewall_and_private_endpoints(svc: Services) -> None:
    assert not svc.kv.get_vault(svc.vault_id).network_restricted
    set_vault_network(
        svc.sim.endpoints,
        "kv-cmk-demo",
        public_network_access="Disabled",
        network_acls={
            "bypass": "None",
            "defaultAction": "Deny",
            "ipRules": [{"value": "203.0.113.0/24"}],
            "virtualNetworkRules": [{"id": SUBNET}],
        },
        private_endpoint="pe-kv",
    )
    vault = svc.kv.get_vault(svc.vault_id)
    assert (vault.public_network_access, vault.network_default_action, vault.network_bypass) == (
        "Disabled",
        "Deny",
        "None",
    )
    assert vault.ip_rules == ("203.0.113.0/24",) and vault.virtual_network_rules == (SUBNET,)
    assert [(p.id.rsplit("/", 1)[-1], p.status) for p in vault.private_endpoints] == [("pe-kv", "Approved")]
    report = run_preflight(svc.kv, svc.arm, vault_id=svc.vault_id)
    assert report.codes() == ["VAULT_NETWORK_BLOCKS_SERVICE"] and not report.passed

    set_vault_network(
        svc.sim.endpoints, "kv-cmk-demo", network_acls={"bypass": "AzureServices", "defaultAction": "Deny"}
    )
    report = run_preflight(svc.kv, svc.arm, vault_id=svc.vault_id)
    assert report.codes() == ["VAULT_NETWORK_TRUSTED_BYPASS"] and report.passed
