"""Prefect block types: `prefect block register -m blocks` makes them appear in the UI."""

from blocks.approval import ApprovalSettings
from blocks.connections import AzureAdminConnection, PowerPlatformAdminConnection

DEFAULT_AZURE_BLOCK = "sim-azure-admin"
DEFAULT_POWERPLATFORM_BLOCK = "sim-powerplatform-admin"
DEFAULT_APPROVAL_BLOCK = "cmk-approvals"

__all__ = [
    "ApprovalSettings",
    "AzureAdminConnection",
    "PowerPlatformAdminConnection",
    "DEFAULT_AZURE_BLOCK",
    "DEFAULT_POWERPLATFORM_BLOCK",
    "DEFAULT_APPROVAL_BLOCK",
]
