"""Connection settings per side (Azure/Key Vault administrator, Power Platform administrator).

Real Azure and the simulator differ only in these values. Secrets are SecretStr: they never appear in repr,
str, model_dump_json or validation errors (hide_input_in_errors).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

AuthMode = Literal["default", "client_secret", "managed_identity"]


class ConnectionSettings(BaseModel):
    """What both sides share: tenant, identity, TLS trust and timeouts."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    tenant_id: str = Field(min_length=1)
    auth: AuthMode = "default"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    identity_endpoint: str | None = None
    identity_header: SecretStr | None = None
    authority_host: str | None = None
    ca_bundle: str | None = None
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    retry_total: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _check_auth(self) -> ConnectionSettings:
        side = type(self).__name__
        if self.auth == "client_secret":
            if not self.client_id:
                raise ValueError(f"{side}: auth 'client_secret' needs client_id (the app registration's id).")
            if self.client_secret is None or not self.client_secret.get_secret_value():
                raise ValueError(
                    f"{side}: auth 'client_secret' needs client_secret; set it from your secret store, "
                    "or choose auth 'managed_identity' or 'default'."
                )
        if (self.identity_endpoint is None) != (self.identity_header is None):
            raise ValueError(
                f"{side}: identity_endpoint and identity_header go together (the App Service "
                "managed-identity "
                "protocol needs both); set both or neither."
            )
        if self.identity_endpoint is not None and self.auth != "managed_identity":
            raise ValueError(f"{side}: identity_endpoint is only used with auth 'managed_identity'.")
        if self.identity_endpoint is not None and not self.identity_endpoint.startswith(
            ("https://", "http://")
        ):
            raise ValueError(f"{side}: identity_endpoint must be an http(s):// URL.")
        return self

    @property
    def actor(self) -> str:
        """Who acts with these settings, for the journal: the client id, or the auth mode."""
        return self.client_id or f"{self.auth}-credential"

    @property
    def verify(self) -> str | bool:
        """TLS verification for httpx and azure-core: the CA bundle path, else the system trust store."""
        return self.ca_bundle or True


class AzureSettings(ConnectionSettings):
    """The Key Vault / Azure administrator side: ARM and the Key Vault data plane."""

    subscription_id: str = Field(min_length=1)
    arm_endpoint: str = "https://management.azure.com"
    arm_scope: str = "https://management.azure.com/.default"
    keyvault_scope: str = "https://vault.azure.net/.default"
    verify_challenge_resource: bool = True
    polling_interval: float = Field(
        default=10.0, ge=0
    )  # LRO poll delay when the service sends no Retry-After
    policy_api_version: str = "2020-10-30-preview"

    @model_validator(mode="after")
    def _check_endpoint(self) -> AzureSettings:
        if not self.arm_endpoint.startswith("https://"):
            raise ValueError(
                "AzureSettings: arm_endpoint must be https:// (the SDK refuses bearer tokens over http)."
            )
        return self


class PowerPlatformSettings(ConnectionSettings):
    """The Power Platform administrator side: the BAP admin API."""

    bap_endpoint: str = "https://api.bap.microsoft.com"
    scope: str = "https://service.powerapps.com/.default"
    admin_object_id: str | None = None  # the Power Platform admin's object id, for the Reader grant
    link_api_version: str = "2019-10-01"
    environments_api_version: str = "2020-10-01"
    governance_api_version: str = "2021-04-01"
    enable_api_version: str = "2018-01-01"
    # Re-enabling a CMK-locked environment has no documented API (admin center only). True only for the
    # simulator, whose stand-in endpoint lets the demo run end to end; real Azure gets an admin-center checklist.
    undocumented_reenable: bool = False
    default_poll_seconds: float = Field(default=10.0, gt=0)  # when an operation sends no Retry-After
    # -- pacing (client-side rate limit; docs/performance.md) ------------------------------------------
    # Requests per second this caller sends to BAP; 0 = no known limit: full speed until the service
    # answers 429, then just below what it let through (cmk/clients/retry.py TokenBucket).
    rate_per_second: float = Field(default=0.0, ge=0)
    rate_burst: int = Field(default=20, ge=1)  # requests that may go at once when the bucket is full
    # -- end of pacing ---------------------------------------------------------------------------------

    @model_validator(mode="after")
    def _check_endpoint(self) -> PowerPlatformSettings:
        if not self.bap_endpoint.startswith("https://"):
            raise ValueError("PowerPlatformSettings: bap_endpoint must be https://.")
        return self


def settings_from_simulator(endpoints: dict[str, Any]) -> tuple[AzureSettings, PowerPlatformSettings]:
    """Settings for the simulator's two admin identities (keyvault-admin, powerplatform-admin)."""
    identities = endpoints["identities"]
    common: dict[str, Any] = {
        "tenant_id": endpoints["tenant_id"],
        "auth": "managed_identity",
        "identity_endpoint": endpoints["token"],
        "identity_header": SecretStr(endpoints["identity_header"]),
        "ca_bundle": endpoints["ca_bundle"],
    }
    azure = AzureSettings(
        **common,
        client_id=identities["keyvault-admin"]["client_id"],
        subscription_id=endpoints["subscription_id"],
        arm_endpoint=endpoints["arm"],
        verify_challenge_resource=False,
        polling_interval=0.2,
    )
    power_platform = PowerPlatformSettings(
        **common,
        client_id=identities["powerplatform-admin"]["client_id"],
        bap_endpoint=endpoints["bap"],
        admin_object_id=identities["powerplatform-admin"]["object_id"],
        default_poll_seconds=1.0,
        undocumented_reenable=True,  # the simulator's stand-in re-enable endpoint
    )
    return azure, power_platform
