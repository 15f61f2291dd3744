"""Helpers shared by tests: real azure-identity credentials pointed at the simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


@contextmanager
def ready_for_flows(sim: Any, tmp_path: Path, **settings: Any) -> Iterator[Any]:
    """A reset simulator with the given fast settings, fresh state and report dirs, and the default blocks."""
    from blocks.simulator import save_simulator_blocks

    sim.control.reset()
    sim.control.settings(**settings)
    point_managed_identity_at(sim.endpoints)
    saved = {k: os.environ.get(k) for k in ("CMK_STATE_DIR", "CMK_REPORTS_DIR")}
    os.environ["CMK_STATE_DIR"] = str(tmp_path / "state")
    os.environ["CMK_REPORTS_DIR"] = str(tmp_path / "reports")
    save_simulator_blocks(sim.endpoints, approval_timeout_seconds=120)
    try:
        yield sim
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def set_vault_network(
    endpoints: dict[str, Any],
    vault: str,
    *,
    public_network_access: str | None = None,
    network_acls: dict[str, Any] | None = None,
    private_endpoint: str | None = None,
    resource_group: str = "rg-cmk",
) -> None:
    """PATCH a vault's network settings (and add an approved private endpoint connection) as the Key Vault admin."""
    from azure.mgmt.keyvault import KeyVaultManagementClient

    props: dict[str, Any] = {}
    if public_network_access is not None:
        props["publicNetworkAccess"] = public_network_access
    if network_acls is not None:
        props["networkAcls"] = network_acls
    client = KeyVaultManagementClient(
        mi_credential(endpoints, "keyvault-admin"),
        endpoints["subscription_id"],
        base_url=endpoints["arm"],
        connection_verify=endpoints["ca_bundle"],
    )
    with client:
        client.vaults.update(resource_group, vault, {"properties": props})
        if private_endpoint:
            state = {"privateLinkServiceConnectionState": {"status": "Approved"}}
            client.private_endpoint_connections.put(
                resource_group, vault, private_endpoint, {"properties": state}
            )
