"""Build the azure-identity credential for one side's settings, and the token scope per audience."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Literal

from azure.core.credentials import TokenCredential

from cmk.clients.settings import AzureSettings, ConnectionSettings, PowerPlatformSettings
from cmk.errors import ConfigurationError

log = logging.getLogger(__name__)

Audience = Literal["arm", "keyvault", "bap"]
_ENV_LOCK = threading.Lock()


def scope_for(settings: ConnectionSettings, audience: Audience) -> str:
    """The OAuth scope for an audience: ARM and Key Vault (Azure side), BAP (Power Platform side)."""
    if audience == "bap":
        if not isinstance(settings, PowerPlatformSettings):
            raise ConfigurationError("The BAP scope belongs to PowerPlatformSettings; pass those settings.")
        return settings.scope
    if not isinstance(settings, AzureSettings):
        raise ConfigurationError(f"The {audience} scope belongs to AzureSettings; pass those settings.")
    return settings.arm_scope if audience == "arm" else settings.keyvault_scope


def _export_identity_endpoint(settings: ConnectionSettings) -> None:
    # msal's managed-identity client reads IDENTITY_ENDPOINT / IDENTITY_HEADER from os.environ at every token
    # request, not at construction, and azure-identity has no argument for them: the only way to point a real
    # ManagedIdentityCredential at an explicit endpoint (the simulator, a sidecar) is the process environment.
    # Both sides of one process therefore share one endpoint; a change is logged (never the header).
    assert settings.identity_endpoint is not None and settings.identity_header is not None
    header = settings.identity_header.get_secret_value()
    with _ENV_LOCK:
        current = os.environ.get("IDENTITY_ENDPOINT")
        if current and current != settings.identity_endpoint:
            log.warning(
                "IDENTITY_ENDPOINT was %s and is now %s: managed-identity credentials in this "
                "process share it.",
                current,
                settings.identity_endpoint,
            )
        os.environ["IDENTITY_ENDPOINT"] = settings.identity_endpoint
        os.environ["IDENTITY_HEADER"] = header


def build_credential(settings: ConnectionSettings) -> TokenCredential:
    """Default, ClientSecret or ManagedIdentity credential, trusting ca_bundle when given."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential

    kwargs: dict[str, Any] = {}
    if settings.ca_bundle:
        kwargs["connection_verify"] = settings.ca_bundle
    if settings.auth == "client_secret":
        if settings.authority_host:
            kwargs["authority"] = settings.authority_host
        assert settings.client_id and settings.client_secret  # enforced by the settings validator
        return ClientSecretCredential(
            settings.tenant_id, settings.client_id, settings.client_secret.get_secret_value(), **kwargs
        )
    if settings.auth == "managed_identity":
        if settings.identity_endpoint:
            _export_identity_endpoint(settings)
        if settings.client_id:
            kwargs["client_id"] = settings.client_id
        return ManagedIdentityCredential(**kwargs)
    if settings.client_id:
        kwargs["managed_identity_client_id"] = settings.client_id
    if settings.authority_host:
        kwargs["authority"] = settings.authority_host
    return DefaultAzureCredential(**kwargs)
