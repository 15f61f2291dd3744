"""Rotation tasks: read the policy, make the new key version, move environments (per environment or per wave)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.errors import NotFoundError
from cmk.models import EnvironmentInfo, KeyInfo, PolicyInfo
from cmk.moves import EnvironmentMover, FailureBudget, SwapMethod
from cmk.verification import link_problems
from tasks.context import Services
from tasks.retry import retry_transient

_RETRY = {
    "retries": 3,
    "retry_delay_seconds": [2, 5, 10],
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
}


@task(name="read-policy", **_RETRY)
def read_policy(services: Services, policy_id: str) -> PolicyInfo:
    """The enterprise policy, or a clear error when it does not exist."""
    policy = services.arm.find_policy(policy_id)
    if policy is None:
        raise NotFoundError(
            f"Enterprise policy {policy_id} does not exist (or the Azure identity cannot read it). Check the "
            "ARM id: /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.PowerPlatform/"
            "enterprisePolicies/<name>.",
            target=policy_id,
        )
    return policy


@task(name="read-key", **_RETRY)
def read_key(services: Services, vault_uri: str, key_name: str, version: str | None = None) -> KeyInfo | None:
    """A key version (the latest when version is None), or None when the key does not exist."""
    try:
        return services.keyvault.get_key(vault_uri, key_name, version)
    except NotFoundError:
        return None


@task(name="list-key-versions", **_RETRY)
def list_key_versions(services: Services, vault_uri: str, key_name: str) -> list[KeyInfo]:
    """Every version of the key, oldest first."""
    return services.keyvault.list_key_versions(vault_uri, key_name)


@task(name="create-key-version", cache_policy=NO_CACHE)
def create_key_version(services: Services, vault_uri: str, key_name: str) -> KeyInfo:
    """A new version of the key (same type and size); the previous version stays enabled."""
    key = services.keyvault.create_key_version(vault_uri, key_name)
    get_run_logger().info("Key %s has a new version %s.", key_name, key.version)
    return key


@task(name="verify-linked-environments", **_RETRY)
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


def mover(
    services: Services,
    target: PolicyInfo,
    method: SwapMethod,
    timeout_seconds: float,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> EnvironmentMover:
    """The cmk/ mover for this change, logging to the run."""
    return EnvironmentMover(
        services.powerplatform,
        services.checkpoints,
        target,
        method=method,
        timeout_seconds=timeout_seconds,
        default_poll_seconds=services.powerplatform.settings.default_poll_seconds,
        on_row=on_row,
        logger=get_run_logger(),
    )


@task(name="rotate-environment", task_run_name="rotate-{env_id}", cache_policy=NO_CACHE)
def rotate_environment(
    services: Services, env_id: str, target: PolicyInfo, method: SwapMethod, timeout_seconds: float
) -> dict[str, Any]:
    """Move one environment to the target policy (swap, or unlink then link), resuming a stored operation."""
    rows = mover(services, target, method, timeout_seconds).move([env_id], concurrency=1)
    return rows[0]


@task(name="move-wave", task_run_name="move-{wave_name}", cache_policy=NO_CACHE)
def move_wave(
    services: Services,
    wave_name: str,
    env_ids: list[str],
    target: PolicyInfo,
    method: SwapMethod,
    *,
    concurrency: int,
    timeout_seconds: float,
    budget: FailureBudget,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Move a whole wave with one task: bulk polling, at most `concurrency` operations in flight."""
    get_run_logger().info("Wave %s: %d environment(s), %d at a time.", wave_name, len(env_ids), concurrency)
    return mover(services, target, method, timeout_seconds, on_row).move(
        env_ids, concurrency=concurrency, budget=budget
    )
