"""Who may do what on a vault's keys: access-policy permissions and RBAC data actions per operation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.keyvault import errors

if TYPE_CHECKING:
    from simulator.core.identities import Identity
    from simulator.core.ports import KeyVaultPeers

_KEYS = "Microsoft.KeyVault/vaults/keys"
_POLICIES = "Microsoft.KeyVault/vaults/keyrotationpolicies"

# operation -> (access-policy key permission, RBAC data action)
REQUIREMENTS: dict[str, tuple[str, str]] = {
    "keyvault.create_key": ("create", f"{_KEYS}/create/action"),
    "keyvault.get_key": ("get", f"{_KEYS}/read"),
    "keyvault.list_keys": ("list", f"{_KEYS}/read"),
    "keyvault.list_key_versions": ("list", f"{_KEYS}/read"),
    "keyvault.update_key": ("update", f"{_KEYS}/update/action"),
    "keyvault.delete_key": ("delete", f"{_KEYS}/delete"),
    "keyvault.get_deleted_key": ("get", f"{_KEYS}/read"),
    "keyvault.list_deleted_keys": ("list", f"{_KEYS}/read"),
    "keyvault.recover_deleted_key": ("recover", f"{_KEYS}/recover/action"),
    "keyvault.purge_deleted_key": ("purge", f"{_KEYS}/purge/action"),
    "keyvault.rotate_key": ("rotate", f"{_KEYS}/rotate/action"),
    "keyvault.get_rotation_policy": ("getrotationpolicy", f"{_POLICIES}/read"),
    "keyvault.set_rotation_policy": ("setrotationpolicy", f"{_POLICIES}/write"),
    "keyvault.wrap_key": ("wrapkey", f"{_KEYS}/wrap/action"),
    "keyvault.unwrap_key": ("unwrapkey", f"{_KEYS}/unwrap/action"),
    "keyvault.encrypt": ("encrypt", f"{_KEYS}/encrypt/action"),
    "keyvault.decrypt": ("decrypt", f"{_KEYS}/decrypt/action"),
}

# How the permission is spelled in messages (the access-policy enum's casing).
_DISPLAY = {"wrapkey": "wrapKey", "unwrapkey": "unwrapKey"}


def requirement(operation: str) -> tuple[str, str]:
    """The access-policy permission and RBAC data action an operation needs."""
    return REQUIREMENTS[operation]


def authorize(
    peers: KeyVaultPeers, vault: Any, caller: Identity, operation: str, key_name: str | None = None
) -> None:
    """Raise a 403 in the real shape unless the caller may run the operation on this vault."""
    permission, action = requirement(operation)
    location = getattr(vault, "location", None) or "unknown"
    who = errors.caller_text(caller.client_id, caller.object_id, peers.tenant_id)
    if vault.enable_rbac_authorization:
        if peers.has_data_action(caller.object_id, vault.id, action):
            return
        resource = vault.id + (f"/keys/{key_name}" if key_name else "")
        raise errors.rbac_denied(who, action, resource, vault.name, location)
    if permission in vault.key_permissions_for(caller.object_id):
        return
    raise errors.access_policy_denied(who, _DISPLAY.get(permission, permission), vault.name, location)
