"""Key Vault data-plane routes: thin HTTP over KeyVaultState (literal routes before /{version})."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from simulator.core.routing import Router, SimRequest, SimResponse
from simulator.keyvault import errors, models
from simulator.keyvault.authz import authorize

router = Router("keyvault", ignore_case=False)

PAGE_SIZE = 25
T = TypeVar("T")


# -- plumbing ------------------------------------------------------------------------------


def _vault(req: SimRequest, key_name: str | None = None) -> Any:
    """The live ARM vault behind this endpoint, after checking the caller may run the operation."""
    if req.q("api-version") is None:
        raise errors.bad_parameter("The 'api-version' query parameter is required.")
    vault = req.world.kv.peers.find_vault(req.vault_name or "")
    if vault is None:
        raise errors.vault_not_found(req.vault_name)
    assert req.caller is not None  # the core authenticates every Key Vault request
    authorize(req.world.kv.peers, vault, req.caller, req.operation, key_name)
    if key_name:
        req.log_target = f"{vault.name}/keys/{key_name}"
    return vault


def _body(req: SimRequest) -> dict[str, Any]:
    """The JSON object body; 400 BadParameter otherwise."""
    if not req.body:
        return {}
    try:
        data = json.loads(req.body)
    except ValueError as exc:
        raise errors.bad_parameter(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise errors.bad_parameter("The request body must be a JSON object.")
    return data


def _page(
    req: SimRequest, items: Sequence[T], path: str, render: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    """One page of items with an absolute nextLink back to this vault."""
    raw_size = req.q("maxresults")
    try:
        size = int(raw_size) if raw_size else PAGE_SIZE
    except ValueError as exc:
        raise errors.bad_parameter("maxresults must be an integer between 1 and 25.") from exc
    if not 1 <= size <= PAGE_SIZE:
        raise errors.bad_parameter("maxresults must be an integer between 1 and 25.")
    token = req.q("$skiptoken")
    offset = 0
    if token:
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.bad_parameter("The $skiptoken is invalid.") from exc
    page = items[offset : offset + size]
    next_link = None
    if offset + size < len(items):
        skip = models.b64url(json.dumps({"offset": offset + size}).encode())
        api = req.q("api-version")
        next_link = req.url(f"{path}?api-version={api}&$skiptoken={skip}&maxresults={size}")
    return {"value": [render(item) for item in page], "nextLink": next_link}


# -- keys ---------------------------------------------------------------------------------


@router.route("POST", "/keys/{name}/create", "keyvault.create_key")
def create_key(req: SimRequest) -> dict[str, Any]:
    """Create a key or a new version of it."""
    name = req.params["name"]
    vault = _vault(req, name)
    body = _body(req)
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise errors.bad_parameter("Property 'attributes' must be an object.")
    if body.get("kty") == "RSA-HSM" and str(getattr(vault, "sku", "premium")).lower() == "standard":
        raise errors.hsm_needs_premium(vault.name)
    version = req.world.kv.create_key(
        vault.name,
        name,
        kty=body.get("kty"),
        key_size=body.get("key_size"),
        key_ops=body.get("key_ops"),
        enabled=attributes.get("enabled", True),
        nbf=attributes.get("nbf"),
        exp=attributes.get("exp"),
        exportable=attributes.get("exportable", False),
        tags=body.get("tags"),
        public_exponent=body.get("public_exponent"),
    )
    return models.key_bundle(version, vault, req.base_url)


@router.route("POST", "/keys/{name}/rotate", "keyvault.rotate_key")
def rotate_key(req: SimRequest) -> dict[str, Any]:
    """Create a new version now."""
    vault = _vault(req, req.params["name"])
    version = req.world.kv.rotate(vault.name, req.params["name"])
    return models.key_bundle(version, vault, req.base_url)


@router.route("GET", "/keys/{name}/versions", "keyvault.list_key_versions")
def list_key_versions(req: SimRequest) -> dict[str, Any]:
    """Versions of a key, paged."""
    name = req.params["name"]
    vault = _vault(req, name)
    versions = req.world.kv.list_versions(vault.name, name)
    return _page(
        req,
        versions,
        f"/keys/{name}/versions",
        lambda v: models.key_item(v, vault, req.base_url, with_version=True),
    )


@router.route("GET", "/keys/{name}/rotationpolicy", "keyvault.get_rotation_policy")
def get_rotation_policy(req: SimRequest) -> dict[str, Any]:
    """The key's rotation policy (a default one when none is set)."""
    name = req.params["name"]
    vault = _vault(req, name)
    key = req.world.kv.get_key(vault.name, name)
    policy = req.world.kv.get_rotation_policy(vault.name, name)
    return models.rotation_policy_json(policy, req.base_url, key.name)


@router.route("PUT", "/keys/{name}/rotationpolicy", "keyvault.set_rotation_policy")
def set_rotation_policy(req: SimRequest) -> dict[str, Any]:
    """Replace the key's rotation policy."""
    name = req.params["name"]
    vault = _vault(req, name)
    key = req.world.kv.get_key(vault.name, name)
    policy = req.world.kv.set_rotation_policy(vault.name, name, _body(req))
    return models.rotation_policy_json(policy, req.base_url, key.name)


def list_keys(req: SimRequest) -> dict[str, Any]:
    """Live keys, paged (kids without version)."""
    vault = _vault(req)
    keys = req.world.kv.list_keys(vault.name)
    return _page(
        req, keys, "/keys", lambda k: models.key_item(k.latest, vault, req.base_url, with_version=False)
    )


def get_key(req: SimRequest) -> dict[str, Any]:
    """A key's latest version or a given version."""
    name = req.params["name"]
    vault = _vault(req, name)
    version = req.world.kv.get_version(vault.name, name, req.params.get("version"))
    return models.key_bundle(version, vault, req.base_url)


def update_key(req: SimRequest) -> dict[str, Any]:
    """Update attributes, key_ops and tags of a version (latest when none)."""
    name = req.params["name"]
    vault = _vault(req, name)
    body = _body(req)
    version = req.world.kv.update_version(
        vault.name,
        name,
        req.params.get("version"),
        attributes=body.get("attributes"),
        key_ops=body.get("key_ops"),
        tags=body.get("tags"),
    )
    return models.key_bundle(version, vault, req.base_url)


for _path in ("/keys", "/keys/"):
    router.add("GET", _path, "keyvault.list_keys", list_keys)
for _path in ("/keys/{name}/", "/keys/{name}", "/keys/{name}/{version}"):
    router.add("GET", _path, "keyvault.get_key", get_key)
    router.add("PATCH", _path, "keyvault.update_key", update_key)


@router.route("DELETE", "/keys/{name}", "keyvault.delete_key")
def delete_key(req: SimRequest) -> dict[str, Any]:
    """Delete a key: soft when the vault has soft delete, else for good."""
    vault = _vault(req, req.params["name"])
    key, soft = req.world.kv.delete_key(vault, req.params["name"])
    return models.deleted_key_bundle(key, vault, req.base_url, soft=soft)


# -- deleted keys -------------------------------------------------------------------------


@router.route("GET", "/deletedkeys", "keyvault.list_deleted_keys")
def list_deleted_keys(req: SimRequest) -> dict[str, Any]:
    """Soft-deleted keys, paged."""
    vault = _vault(req)
    keys = req.world.kv.list_deleted(vault.name)
    return _page(req, keys, "/deletedkeys", lambda k: models.deleted_key_item(k, vault, req.base_url))


@router.route("GET", "/deletedkeys/{name}", "keyvault.get_deleted_key")
def get_deleted_key(req: SimRequest) -> dict[str, Any]:
    """One soft-deleted key."""
    vault = _vault(req, req.params["name"])
    key = req.world.kv.get_deleted(vault.name, req.params["name"])
    return models.deleted_key_bundle(key, vault, req.base_url)


@router.route("POST", "/deletedkeys/{name}/recover", "keyvault.recover_deleted_key")
def recover_deleted_key(req: SimRequest) -> dict[str, Any]:
    """Bring a soft-deleted key back."""
    vault = _vault(req, req.params["name"])
    key = req.world.kv.recover(vault.name, req.params["name"])
    return models.key_bundle(key.latest, vault, req.base_url)


@router.route("DELETE", "/deletedkeys/{name}", "keyvault.purge_deleted_key")
def purge_deleted_key(req: SimRequest) -> SimResponse:
    """Purge a soft-deleted key (refused under purge protection)."""
    vault = _vault(req, req.params["name"])
    req.world.kv.purge(vault, req.params["name"], getattr(vault, "location", None) or "unknown")
    return SimResponse(204)


# -- crypto -------------------------------------------------------------------------------


def _crypto(operation: str) -> Callable[[SimRequest], dict[str, Any]]:
    """A handler running one RSA operation with the key version."""

    def handler(req: SimRequest) -> dict[str, Any]:
        name = req.params["name"]
        vault = _vault(req, name)
        body = _body(req)
        if "value" not in body:
            raise errors.bad_parameter("Property 'value' is required.")
        value = models.unb64url(body["value"])
        version, result = req.world.kv.crypto(
            vault.name, name, req.params.get("version"), operation, body.get("alg"), value, req.world.now()
        )
        kid = f"{req.base_url}/keys/{version.name}/{version.version}"
        return {"kid": kid, "value": models.b64url(result)}

    handler.__doc__ = f"{operation} with the key."
    return handler


for _op, _operation in (
    ("wrapkey", "keyvault.wrap_key"),
    ("unwrapkey", "keyvault.unwrap_key"),
    ("encrypt", "keyvault.encrypt"),
    ("decrypt", "keyvault.decrypt"),
):
    router.add("POST", f"/keys/{{name}}/{{version}}/{_op}", _operation, _crypto(_op))
    router.add("POST", f"/keys/{{name}}/{_op}", _operation, _crypto(_op))
