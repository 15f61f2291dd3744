"""Helpers shared by tests: real azure-identity credentials pointed at the simulator."""

from __future__ import annotations

import os
from typing import Any

from azure.identity import ManagedIdentityCredential


def point_managed_identity_at(endpoints: dict[str, Any]) -> None:
    """Set IDENTITY_ENDPOINT/IDENTITY_HEADER: msal reads them at every token request, not at construction."""
    os.environ["IDENTITY_ENDPOINT"] = endpoints["token"]
    os.environ["IDENTITY_HEADER"] = endpoints["identity_header"]


def mi_credential(endpoints: dict[str, Any], identity: str) -> ManagedIdentityCredential:
    """A real ManagedIdentityCredential for a scenario identity, speaking the App Service protocol."""
    point_managed_identity_at(endpoints)
    return ManagedIdentityCredential(
        client_id=endpoints["identities"][identity]["client_id"], connection_verify=endpoints["ca_bundle"]
    )
