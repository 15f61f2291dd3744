"""Vault checks: soft delete and purge protection (required by the service)."""

from __future__ import annotations

from cmk.domain.models import VaultInfo
from cmk.preflight.findings import Finding


def check_vault(vault: VaultInfo | None, vault_id: str = "") -> list[Finding]:
    """The vault exists and has soft delete and purge protection on."""
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
    return out
