"""Save the default blocks so that they point at a running simulator's demo tenant."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from blocks.approval import ApprovalSettings
from blocks.connections import AzureAdminConnection, PowerPlatformAdminConnection


def save_simulator_blocks(
    endpoints: dict[str, Any],
    *,
    allowed_approvers: list[str] | None = None,
    approval_timeout_seconds: int = 3600,
) -> None:
    """Create or overwrite the default connection and approval blocks for the simulator at endpoints."""
    header = SecretStr(endpoints["identity_header"])
    AzureAdminConnection(
        tenant_id=endpoints["tenant_id"],
        subscription_id=endpoints["subscription_id"],
        auth="managed_identity",
        client_id=endpoints["identities"]["keyvault-admin"]["client_id"],
        arm_endpoint=endpoints["arm"],
        identity_endpoint=endpoints["token"],
        identity_header=header,
        ca_bundle=endpoints["ca_bundle"],
        verify_challenge_resource=False,
    ).save(DEFAULT_AZURE_BLOCK, overwrite=True)
    PowerPlatformAdminConnection(
        tenant_id=endpoints["tenant_id"],
        auth="managed_identity",
        client_id=endpoints["identities"]["powerplatform-admin"]["client_id"],
        bap_endpoint=endpoints["bap"],
        admin_object_id=endpoints["identities"]["powerplatform-admin"]["object_id"],
        identity_endpoint=endpoints["token"],
        identity_header=header,
        ca_bundle=endpoints["ca_bundle"],
        undocumented_reenable=True,  # the simulator's stand-in for the admin center's "Re-enable environment"
    ).save(DEFAULT_POWERPLATFORM_BLOCK, overwrite=True)
    ApprovalSettings(
        allowed_approvers=allowed_approvers or [],
        timeout_seconds=approval_timeout_seconds,
        poll_interval_seconds=1,
    ).save(DEFAULT_APPROVAL_BLOCK, overwrite=True)
