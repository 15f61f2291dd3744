"""Typed Prefect blocks for the two administrator connections, with factories for the cmk/ clients."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from cmk.clients.arm import ArmService
from cmk.clients.keyvault import KeyVaultService
from cmk.clients.powerplatform import PowerPlatformService
from cmk.clients.settings import AzureSettings, PowerPlatformSettings
from cmk.state.journal import Journal

AuthMode = Literal["default", "client_secret", "managed_identity"]


class AzureAdminConnection(Block):
    """How the Key Vault / Azure administrator reaches ARM and Key Vault."""

    _block_type_name = "CMK Azure Administrator Connection"
    _block_type_slug = "cmk-azure-admin-connection"
    _description = (
        "The Key Vault / Azure administrator's identity and endpoints: used for the key, the enterprise policy "
        "and the access grants. Point it at real Azure (defaults) or at the simulator."
    )

    tenant_id: str = Field(description="Microsoft Entra tenant id (GUID).")
    subscription_id: str = Field(description="Azure subscription id (GUID) holding the vault and the policy.")
    auth: AuthMode = Field(
        default="default",
        description="default = DefaultAzureCredential; client_secret = app registration; "
        "managed_identity = the worker's managed identity.",
    )
    client_id: str | None = Field(default=None, description="App or managed identity client id.")
    client_secret: SecretStr | None = Field(default=None, description="App secret (client_secret auth only).")
    arm_endpoint: str = Field(
        default="https://management.azure.com", description="Azure Resource Manager URL."
    )
    identity_endpoint: str | None = Field(
        default=None, description="Managed-identity token endpoint (App Service protocol); simulator only."
    )
    identity_header: SecretStr | None = Field(default=None, description="Secret for the token endpoint.")
    ca_bundle: str | None = Field(
        default=None,
        description="Path of an extra CA certificate to trust (the simulator's); never disables TLS.",
    )
    verify_challenge_resource: bool = Field(
        default=True, description="Key Vault challenge check; off only for the simulator's IP-address vaults."
    )

    def settings(self) -> AzureSettings:
        """The cmk/ settings this block describes."""
        return AzureSettings(
            tenant_id=self.tenant_id,
            subscription_id=self.subscription_id,
            auth=self.auth,
            client_id=self.client_id,
            client_secret=self.client_secret,
            arm_endpoint=self.arm_endpoint,
            identity_endpoint=self.identity_endpoint,
            identity_header=self.identity_header,
            ca_bundle=self.ca_bundle,
            verify_challenge_resource=self.verify_challenge_resource,
        )

    def key_vault_service(
        self, journal: Journal | None = None, change_id: str | None = None
    ) -> KeyVaultService:
        """A Key Vault client for this identity, journaling under change_id."""
        return KeyVaultService(self.settings(), journal, change_id=change_id)

    def arm_service(self, journal: Journal | None = None, change_id: str | None = None) -> ArmService:
        """An ARM client for this identity, journaling under change_id."""
        return ArmService(self.settings(), journal, change_id=change_id)


class PowerPlatformAdminConnection(Block):
    """How the Power Platform administrator reaches the Power Platform admin API."""

    _block_type_name = "CMK Power Platform Administrator Connection"
    _block_type_slug = "cmk-powerplatform-admin-connection"
    _description = (
        "The Power Platform administrator's identity and the admin API endpoint: used to list, link and unlink "
        "environments. Needs Reader on the enterprise policy."
    )

    tenant_id: str = Field(description="Microsoft Entra tenant id (GUID).")
    auth: AuthMode = Field(default="default", description="How to sign in (see the Azure connection).")
    client_id: str | None = Field(default=None, description="App or managed identity client id.")
    client_secret: SecretStr | None = Field(default=None, description="App secret (client_secret auth only).")
    bap_endpoint: str = Field(
        default="https://api.bap.microsoft.com", description="Power Platform admin API URL."
    )
    admin_object_id: str | None = Field(
        default=None, description="Object id of this administrator, granted Reader on the enterprise policy."
    )
    identity_endpoint: str | None = Field(
        default=None, description="Managed-identity token endpoint (simulator)."
    )
    identity_header: SecretStr | None = Field(default=None, description="Secret for the token endpoint.")
    ca_bundle: str | None = Field(default=None, description="Path of an extra CA certificate to trust.")
    undocumented_reenable: bool = Field(
        default=False,
        description="Simulator only: re-enable locked environments through the simulator's stand-in endpoint. "
        "Real Azure has no documented API for it; unlock then ends with an admin-center checklist.",
    )

    def settings(self) -> PowerPlatformSettings:
        """The cmk/ settings this block describes."""
        return PowerPlatformSettings(
            tenant_id=self.tenant_id,
            auth=self.auth,
            client_id=self.client_id,
            client_secret=self.client_secret,
            bap_endpoint=self.bap_endpoint,
            admin_object_id=self.admin_object_id,
            identity_endpoint=self.identity_endpoint,
            identity_header=self.identity_header,
            ca_bundle=self.ca_bundle,
            undocumented_reenable=self.undocumented_reenable,
        )

    def power_platform_service(
        self, journal: Journal | None = None, change_id: str | None = None
    ) -> PowerPlatformService:
        """A Power Platform admin API client for this identity, journaling under change_id."""
        return PowerPlatformService(self.settings(), journal, change_id=change_id)
