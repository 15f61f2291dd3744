"""Environment tasks: read them in bulk, and move them (link, swap, unlink) with the one cmk/ move engine."""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.models import EnvironmentInfo, PolicyInfo
from cmk.moves import Action, EnvironmentMover, FailureBudget, SwapMethod
from cmk.rows import EnvironmentRow
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(
    name="read-environments",
    **TRANSIENT_RETRY,
)
def read_environments(services: Services) -> list[EnvironmentInfo]:
    """Every environment of the tenant, read with one paged list."""
    return services.powerplatform.list_environments()


def environment_mover(
    services: Services,
    target: PolicyInfo | None,
    *,
    action: Action = "link",
    method: SwapMethod = "link",
    timeout_seconds: float,
    on_row: Callable[[EnvironmentRow], None] | None = None,
) -> EnvironmentMover:
    """The cmk/ mover for this change, logging to the run."""
    return EnvironmentMover(
        services.powerplatform,
        services.checkpoints,
        target,
        action=action,
        method=method,
        timeout_seconds=timeout_seconds,
        default_poll_seconds=services.powerplatform.settings.default_poll_seconds,
        on_row=on_row,
        logger=get_run_logger(),
    )


@task(name="move-environment", task_run_name="{action}-{env_id}", cache_policy=NO_CACHE)
def move_one_environment(
    services: Services,
    env_id: str,
    action: Action,
    target: PolicyInfo | None,
    *,
    method: SwapMethod = "link",
    timeout_seconds: float = 3600,
) -> EnvironmentRow:
    """Link one environment to target (swap, or unlink then link), or unlink it; resumes stored work."""
    mover = environment_mover(services, target, action=action, method=method, timeout_seconds=timeout_seconds)
    return mover.move([env_id], concurrency=1)[0]


@task(name="move-wave", task_run_name="{action}-{wave_name}", cache_policy=NO_CACHE)
def move_wave(
    services: Services,
    wave_name: str,
    env_ids: list[str],
    action: Action,
    target: PolicyInfo | None,
    *,
    method: SwapMethod = "link",
    concurrency: int,
    timeout_seconds: float,
    budget: FailureBudget,
    on_row: Callable[[EnvironmentRow], None] | None = None,
) -> list[EnvironmentRow]:
    """Move a whole wave with one task: bulk polling, at most `concurrency` operations in flight."""
    get_run_logger().info("Wave %s: %d environment(s), %d at a time.", wave_name, len(env_ids), concurrency)
    mover = environment_mover(
        services, target, action=action, method=method, timeout_seconds=timeout_seconds, on_row=on_row
    )
    return mover.move(env_ids, concurrency=concurrency, budget=budget)
