"""Managed Environment tasks: make an environment a Managed Environment and verify that it is one."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.errors import OperationFailedError
from tasks.context import Services


@task(name="make-managed-environment", task_run_name="make-managed-{env_id}", cache_policy=NO_CACHE)
def make_managed_environment(services: Services, env_id: str, timeout_seconds: float = 1800) -> bool:
    """POST governanceConfiguration (Standard), wait for it, then re-read the environment: True when managed."""
    pp = services.powerplatform
    handle = pp.enable_managed_environment(env_id)
    if handle is not None:
        pp.wait(handle, timeout_seconds)
    env = pp.get_environment(env_id)
    if not env.managed:
        raise OperationFailedError(
            f"Environment {env.display_name or env_id} is still not a Managed Environment after enabling it; "
            "check its licence and the admin center, then run the onboarding again.",
            target=env_id,
        )
    get_run_logger().info("Environment %s is a Managed Environment.", env.display_name or env_id)
    return True
