"""Vault tasks: read a key vault (GET only)."""

from __future__ import annotations

from prefect import task

from cmk.domain.models import VaultInfo
from cmk.errors import NotFoundError
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(name="read-vault", **TRANSIENT_RETRY)
def read_vault(services: Services, vault_id: str) -> VaultInfo:
    """The vault's protection settings and access model."""
    return services.keyvault.get_vault(vault_id)


@task(name="find-vault", **TRANSIENT_RETRY)
def find_vault(services: Services, vault_id: str) -> VaultInfo | None:
    """The vault, or None when it does not exist."""
    try:
        return services.keyvault.get_vault(vault_id)
    except NotFoundError:
        return None
