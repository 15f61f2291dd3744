"""Vault checks: soft delete and purge protection (required by the service), and a network that lets it in.

A vault behind its firewall or reachable only through private endpoints is supported only with "Allow trusted
Microsoft services to bypass this firewall" (networkAcls.bypass AzureServices); without it the policy is locked.
"""

from __future__ import annotations

from cmk.domain.models import VaultInfo
from cmk.preflight.findings import Finding

NETWORK_BLOCKS_SERVICE = "VAULT_NETWORK_BLOCKS_SERVICE"
NETWORK_BYPASS_IMPLICIT = "VAULT_NETWORK_BYPASS_IMPLICIT"
NETWORK_TRUSTED_BYPASS = "VAULT_NETWORK_TRUSTED_BYPASS"


def check_vault(vault: VaultInfo | None, vault_id: str = "") -> list[Finding]:
    """The vault exists, has soft delete and purge protection on, and its network lets the service reach the key."""
    if vault is None:
        return [
            Finding(
                "VAULT_NOT_FOUND",
                "blocking",
                vault_id,
                "The Key Vault does not exist or the Azure identity cannot read it.",
                "Check the vault id, or grant the Azure identity Reader on the vault.",
            )
        ]
    out: list[Finding] = []
    if not vault.soft_delete:
        out.append(
            Finding(
                "VAULT_SOFT_DELETE_OFF",
                "blocking",
                vault.id,
                f"Soft delete is off on vault {vault.name}; Power Platform refuses keys from such a vault.",
                "Enable soft delete on the vault (it cannot be turned off again).",
            )
        )
    if not vault.purge_protection:
        out.append(
            Finding(
                "VAULT_PURGE_PROTECTION_OFF",
                "blocking",
                vault.id,
                f"Purge protection is off on vault {vault.name}: a purged key would destroy every "
                "environment's data.",
                "Enable purge protection on the vault (az keyvault update --enable-purge-protection true).",
            )
        )
    out += check_vault_network(vault)
    return out


def _restrictions(vault: VaultInfo) -> str:
    """What keeps outside callers away from the vault, in words."""
    said = []
    if vault.public_access_disabled:
        said.append("public network access is Disabled")
    if vault.firewall_denies:
        rules = len(vault.ip_rules) + len(vault.virtual_network_rules)
        said.append(f"the firewall denies by default ({rules} IP or virtual network rule(s) allowed)")
    return " and ".join(said)


def check_vault_network(vault: VaultInfo | None) -> list[Finding]:
    """Power Platform reaches a firewalled or private vault only as a trusted Microsoft service (bypass AzureServices)."""
    if vault is None or not vault.network_restricted:
        return []
    restricted = _restrictions(vault)
    if not vault.trusted_services_bypass:
        return [
            Finding(
                NETWORK_BLOCKS_SERVICE,
                "blocking",
                vault.id,
                f"On vault {vault.name} {restricted}, and trusted Microsoft services may not bypass the "
                "firewall (networkAcls.bypass is None): Power Platform cannot reach the key, so the policy "
                "turns Unhealthy and every environment that uses it is locked.",
                "Turn on 'Allow trusted Microsoft services to bypass this firewall' (networkAcls.bypass "
                f"AzureServices: az keyvault update --name {vault.name} --bypass AzureServices), or allow public "
                "access again (publicNetworkAccess Enabled and networkAcls.defaultAction Allow). Private "
                "endpoints and IP or virtual network rules do not let the service in; only the bypass does.",
            )
        ]
    if vault.network_bypass is None:
        return [
            Finding(
                NETWORK_BYPASS_IMPLICIT,
                "warning",
                vault.id,
                f"On vault {vault.name} {restricted}; the trusted-services bypass is not set, so only the "
                "service default (AzureServices) lets Power Platform in.",
                "Set it explicitly so a later change cannot drop it unnoticed: az keyvault update --name "
                f"{vault.name} --bypass AzureServices.",
            )
        ]
    return [
        Finding(
            NETWORK_TRUSTED_BYPASS,
            "info",
            vault.id,
            f"On vault {vault.name} {restricted} ({len(vault.private_endpoints)} private endpoint "
            "connection(s)); trusted Microsoft services bypass the firewall, so Power Platform reaches the key "
            "(supported).",
            "Keep 'Allow trusted Microsoft services to bypass this firewall' on: turning it off locks every "
            "environment of the policy.",
        )
    ]
