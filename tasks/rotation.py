"""Rotation tasks: read the policy and keys, make the new key version, verify the linked environments."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.errors import NotFoundError
from cmk.models import EnvironmentInfo, KeyInfo, PolicyInfo
from cmk.verification import link_problems
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


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
def create_key_version(services: Services, vault_uri: str, key_name: str) -> KeyInfo:
    """A new version of the key (same type and size); the previous version stays enabled."""
    key = services.keyvault.create_key_version(vault_uri, key_name)
    get_run_logger().info("Key %s has a new version %s.", key_name, key.version)
    return key


@task(name="verify-linked-environments", **TRANSIENT_RETRY)
def verify_linked_environments(
    services: Services, policy: PolicyInfo, env_ids: list[str]
) -> list[tuple[str, EnvironmentInfo | None, list[str]]]:
    """Re-read every environment in one list: (id, state, problems) for each, problems empty when healthy."""
    by_id = {e.id.lower(): e for e in services.powerplatform.list_environments()}
    out = []
    for env_id in env_ids:
        env = by_id.get(env_id.lower())
        problems = (
            ["the environment is no longer visible"]
            if env is None
            else link_problems(env, policy.system_id or "")
        )
        out.append((env_id, env, problems))
    return out
