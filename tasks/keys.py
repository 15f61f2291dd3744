"""Key tasks: read a key or its versions, create it or a new version, disable an old version."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.domain.models import KeyInfo, KeyLifetime, RotationPolicyInfo
from cmk.errors import NotFoundError
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(name="ensure-key", **TRANSIENT_RETRY)
def ensure_key(
    services: Services,
    vault_uri: str,
    key_name: str,
    key_type: str,
    key_size: int,
    lifetime: KeyLifetime | None = None,
) -> KeyInfo:
    """Create the key (expiring as lifetime says), or adopt an existing one of the right type and size."""
    expires_on = lifetime.expires_on(datetime.now(UTC)) if lifetime else None
    key, created = services.keyvault.ensure_key(
        vault_uri, key_name, kty=key_type, size=key_size, expires_on=expires_on
    )
    get_run_logger().info(
        "Key %s %s (version %s).", key_name, "created" if created else "adopted", key.version
    )
    return key


@task(name="disable-key-version", cache_policy=NO_CACHE)
def disable_key_version(services: Services, vault_uri: str, key_name: str, version: str) -> KeyInfo:
    """Disable one old key version (it stays in the vault and can be enabled again)."""
    key = services.keyvault.set_key_version_enabled(vault_uri, key_name, version, False)
    get_run_logger().info("Disabled key %s version %s.", key_name, version)
    return key


@task(name="read-key", **TRANSIENT_RETRY)
def read_key(services: Services, vault_uri: str, key_name: str, version: str | None = None) -> KeyInfo | None:
    """A key version (the latest when version is None), or None when the key does not exist."""
    try:
        return services.keyvault.get_key(vault_uri, key_name, version)
    except NotFoundError:
        return None


@task(name="list-key-versions", **TRANSIENT_RETRY)
def list_key_versions(services: Services, vault_uri: str, key_name: str) -> list[KeyInfo]:
    """Every version of the key, oldest first."""
    return services.keyvault.list_key_versions(vault_uri, key_name)


@task(name="create-key-version", cache_policy=NO_CACHE)
def create_key_version(
    services: Services, vault_uri: str, key_name: str, lifetime: KeyLifetime | None = None
) -> KeyInfo:
    """A new version of the key (same type and size, expiring as lifetime says); the previous one stays enabled."""
    expires_on = lifetime.expires_on(datetime.now(UTC)) if lifetime else None
    key = services.keyvault.create_key_version(vault_uri, key_name, expires_on=expires_on)
    get_run_logger().info("Key %s has a new version %s.", key_name, key.version)
    return key


@task(name="read-rotation-policy", **TRANSIENT_RETRY)
def read_rotation_policy(services: Services, vault_uri: str, key_name: str) -> RotationPolicyInfo | None:
    """The key's rotation policy, or None when the key does not exist."""
    try:
        return services.keyvault.get_rotation_policy(vault_uri, key_name)
    except NotFoundError:
        return None


@task(name="set-rotation-policy", cache_policy=NO_CACHE)
def set_rotation_policy(
    services: Services, vault_uri: str, key_name: str, lifetime: KeyLifetime
) -> RotationPolicyInfo:
    """Give the key its expiry and rotation policy (KeyClient.update_key_rotation_policy)."""
    policy = services.keyvault.set_rotation_policy(vault_uri, key_name, lifetime)
    get_run_logger().info("Key %s rotation policy set: %s.", key_name, lifetime.detail())
    return policy
