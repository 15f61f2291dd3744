"""Key Vault data-plane errors with the real service's codes and messages."""

from __future__ import annotations

from simulator.core.errors import SimError

_HELP_NOT_FOUND = "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
_HELP_ACCESS = "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"


def bad_parameter(message: str) -> SimError:
    """A 400 BadParameter, the code Key Vault uses for invalid input."""
    return SimError(400, "BadParameter", message)


def invalid_name(name: str) -> SimError:
    """A 400 for a key name outside ^[0-9a-zA-Z-]{1,127}$."""
    return bad_parameter(f"The request URI contains an invalid name: {name}")


def unsupported_key(kty: object, size: object) -> SimError:
    """A 400 for a key type or size the simulator does not create."""
    return bad_parameter(
        f"Unsupported key type/size: kty '{kty}', key_size '{size}'. "
        "Supported: RSA or RSA-HSM with key_size 2048, 3072 or 4096."
    )


def hsm_needs_premium(vault_name: str) -> SimError:
    """A 400 for an HSM-protected key in a standard-SKU vault."""
    return bad_parameter(
        f"HSM-protected keys (kty RSA-HSM) need a premium vault; vault '{vault_name}' has the standard SKU."
    )


def key_not_found(name: str, version: str | None = None) -> SimError:
    """A 404 KeyNotFound for a live key or version."""
    ident = f"{name}/{version}" if version else name
    return SimError(
        404,
        "KeyNotFound",
        f"A key with (name/id) {ident} was not found in this key vault. If you recently deleted this key "
        f"you may be able to recover it using the correct recovery command. {_HELP_NOT_FOUND}",
    )


def deleted_key_not_found(name: str) -> SimError:
    """A 404 KeyNotFound for a soft-deleted key."""
    return SimError(404, "KeyNotFound", f"Deleted Key not found: {name}")


def deleted_but_recoverable(name: str) -> SimError:
    """A 409 when a key name is held by a soft-deleted key."""
    return SimError(
        409,
        "Conflict",
        f"Key {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
        "in this state, the key can only be recovered or purged.",
        inner_code="ObjectIsDeletedButRecoverable",
    )


def purge_protected(vault_name: str, location: str) -> SimError:
    """A 403 for a purge while the vault has purge protection."""
    return SimError(
        403,
        "Forbidden",
        'Operation "purge" is not allowed because purge protection is enabled for this vault. '
        "Key Vault service will automatically purge it after the retention period has passed. "
        f"Vault: {vault_name};location={location}",
    )


def key_unusable(operation: str, reason: str) -> SimError:
    """A 403 for crypto on a disabled, expired or not-yet-valid key (reason: disabled|expired|nbf)."""
    if reason == "disabled":
        return SimError(
            403,
            "Forbidden",
            f"Operation {operation} is not allowed on a disabled key.",
            inner_code="KeyDisabled",
        )
    if reason == "expired":
        return SimError(
            403,
            "Forbidden",
            f"Operation {operation} is not allowed on an expired key.",
            inner_code="KeyExpired",
        )
    return SimError(
        403,
        "Forbidden",
        f"Operation {operation} is not allowed on a key that is not yet valid (nbf is in the future).",
        inner_code="KeyNotYetValid",
    )


def operation_not_permitted(operation: str) -> SimError:
    """A 400 for a crypto operation that the key's key_ops does not allow."""
    return bad_parameter(f"Operation {operation} is not permitted on this key (not in key_ops).")


def vault_not_found(vault_name: str | None) -> SimError:
    """A 404 for a request to a vault that no longer exists or is soft-deleted."""
    return SimError(
        404,
        "VaultNotFound",
        f"The vault '{vault_name}' does not exist or is soft-deleted; its data plane is unavailable.",
    )


def caller_text(app_id: str, object_id: str, tenant_id: str) -> str:
    """How Key Vault names a caller in 403 messages."""
    return f"appid={app_id};oid={object_id};iss=https://sts.windows.net/{tenant_id}/"


def access_policy_denied(caller: str, permission: str, vault_name: str, location: str) -> SimError:
    """A 403 for an access-policy vault where the caller lacks the key permission."""
    return SimError(
        403,
        "Forbidden",
        f"The user, group or application '{caller}' does not have keys {permission} permission on key vault "
        f"'{vault_name};location={location}'. {_HELP_ACCESS}",
        inner_code="AccessDenied",
    )


def rbac_denied(caller: str, action: str, resource: str, vault_name: str, location: str) -> SimError:
    """A 403 for an RBAC vault where no role assignment grants the data action."""
    return SimError(
        403,
        "Forbidden",
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments, deny assignments or role definitions were changed recently, please observe "
        "propagation time.\r\n"
        f"Caller: {caller}\r\n"
        f"Action: '{action}'\r\n"
        f"Resource: '{resource.lower()}'\r\n"
        "Assignment: (not found)\r\n"
        "DenyAssignmentId: null\r\n"
        "DecisionReason: null \r\n"
        f"Vault: {vault_name};location={location}\r\n",
        inner_code="ForbiddenByRbac",
    )
