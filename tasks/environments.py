"""Environment tasks: read them in bulk, move them with the one cmk/ move engine, re-enable, verify, wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.domain.models import (
    EnvironmentInfo,
    OperationHandle,
    PolicyInfo,
)
from cmk.domain.rows import EnvironmentRow
from cmk.errors import (
    BusyError,
    CmkError,
    ConflictError,
    OperationFailedError,
)
from cmk.moves.budget import FailureBudget
from cmk.moves.engine import Action, EnvironmentMover, SwapMethod
from cmk.plans.lockdown import ADMIN_CENTER, LockRow
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


@task(name="move-one-environment", task_run_name="{action}-{env_id}", cache_policy=NO_CACHE)
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


@task(name="wait-environments-runtime", cache_policy=NO_CACHE)
def wait_environments_runtime(
    services: Services, env_ids: list[str], want: str, timeout_seconds: float, poll_seconds: float = 1.0
) -> dict[str, EnvironmentInfo]:
    """Re-read the environment list until every env_id has runtime `want`, or the deadline passes.

    Returns the last state read of each environment; the caller decides what a laggard means.
    """
    wanted = {e.lower() for e in env_ids}
    deadline = time.monotonic() + timeout_seconds
    while True:
        seen = {e.id.lower(): e for e in services.powerplatform.list_environments() if e.id.lower() in wanted}
        lagging = [
            e
            for e in wanted
            if (seen.get(e) is None or (seen[e].runtime_state or "").lower() != want.lower())
        ]
        if not lagging or time.monotonic() > deadline:
            return seen
        time.sleep(poll_seconds)


def _enabled(services: Services, env_id: str) -> tuple[bool, Any]:
    env = services.powerplatform.get_environment(env_id)
    return (env.runtime_state or "").lower() == "enabled", env


@task(name="reenable-environment", task_run_name="reenable-{env_id}", cache_policy=NO_CACHE)
def reenable_environment(
    services: Services, env_id: str, *, timeout_seconds: float = 1800, busy_poll_seconds: float = 2.0
) -> LockRow:
    """Bring a locked environment back online and verify it is Enabled.

    With the simulator's stand-in endpoint (undocumented_reenable): POST enable once, then wait. Against real Azure
    there is no documented call: the row is left to the admin center (ADMIN_CENTER) and a re-run verifies it.
    """
    logger = get_run_logger()
    pp = services.powerplatform
    ckpt = services.checkpoints
    started = time.monotonic()
    deadline = started + timeout_seconds
    progress = ckpt.environment(env_id)
    if progress.get("status") == "succeeded":
        return replace(LockRow.of(progress["row"]), status="skipped-done")
    row = LockRow(env_id)
    try:
        online, env = _enabled(services, env_id)
        row = replace(
            row,
            name=env.display_name or "",
            geo=env.location or "",
            sku=env.sku or "",
            runtime_before=env.runtime_state or "",
        )
        handle = OperationHandle.from_dict(progress["operation"]) if progress.get("operation") else None
        if handle is not None and pp.poll(handle).state.lower() == "failed":
            logger.warning("%s: the earlier re-enable failed; starting it again.", env_id)
            handle = None
        if handle is None:
            if online:
                row = replace(row, status="already-done", runtime_after=env.runtime_state or "")
                ckpt.update_environment(env_id, status="succeeded", row=row.to_dict())
                return row
            if not pp.settings.undocumented_reenable:
                # No documented API re-enables a CMK-locked environment: the admin center does; a re-run verifies.
                row = replace(row, status=ADMIN_CENTER, runtime_after=env.runtime_state or "")
                ckpt.update_environment(env_id, status=ADMIN_CENTER, row=row.to_dict())
                logger.info(
                    "%s: re-enable it in the Power Platform admin center (no documented API).", env_id
                )
                return row
            while handle is None:
                try:
                    handle = pp.reenable_environment(env_id)
                except BusyError:
                    if time.monotonic() > deadline:
                        raise
                    logger.info("%s: busy with another lifecycle operation; waiting.", env_id)
                    time.sleep(busy_poll_seconds)
                except ConflictError:
                    # 409 EnvironmentNotDisabled: someone re-enabled it meanwhile.
                    online, env = _enabled(services, env_id)
                    if not online:
                        raise
                    row = replace(row, status="already-done", runtime_after=env.runtime_state or "")
                    ckpt.update_environment(env_id, status="succeeded", row=row.to_dict())
                    return row
            ckpt.update_environment(env_id, operation=handle.to_dict(), status="in-flight")
        row.operation_id = handle.operation_id or ""
        pp.wait(handle, max(1.0, deadline - time.monotonic()))
        online, env = _enabled(services, env_id)
        row.runtime_after = env.runtime_state or ""
        if not online:
            raise OperationFailedError(
                f"Re-enable finished but the environment is {env.runtime_state} ({env.runtime_reason}).",
                target=env_id,
            )
        row.status = "succeeded"
    except CmkError as exc:
        row = replace(row, status="failed", error=str(exc))
        logger.error("%s: re-enable failed: %s", env_id, exc)
    row.duration_seconds = round(time.monotonic() - started, 2)
    ckpt.update_environment(env_id, status=row.status, row=row.to_dict())
    return row


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
            else env.link_problems(policy.system_id or "")
        )
        out.append((env_id, env, problems))
    return out
