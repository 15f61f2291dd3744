"""Environment tasks: read them in bulk, and move one to a policy (link) or back to Microsoft (unlink)."""

from __future__ import annotations

import time
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.errors import BusyError, CmkError, OperationFailedError, OperationTimeoutError
from cmk.models import EnvironmentInfo, OperationHandle, PolicyInfo
from cmk.moves import environment_facts
from cmk.verification import link_problems, unlink_problems
from tasks.context import Services
from tasks.retry import retry_transient


@task(
    name="read-environments",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[2, 5, 10],
    retry_condition_fn=retry_transient,
)
def read_environments(services: Services) -> list[EnvironmentInfo]:
    """Every environment of the tenant, read with one paged list."""
    return services.powerplatform.list_environments()


def _wait_until_idle(
    services: Services, env_id: str, deadline: float, poll_seconds: float
) -> EnvironmentInfo:
    """Re-read the environment until no lifecycle operation shows on it, or the deadline passes."""
    while True:
        env = services.powerplatform.get_environment(env_id)
        if not env.operation_running:
            return env
        if time.monotonic() > deadline:
            raise OperationTimeoutError(
                f"Environment {env_id} stayed busy with another operation; run the flow again later with the "
                "same change id to continue.",
                target=env_id,
            )
        time.sleep(poll_seconds)


@task(name="move-environment", task_run_name="{action}-{env_id}", cache_policy=NO_CACHE)
def move_environment(
    services: Services,
    env_id: str,
    action: Literal["link", "unlink"],
    policy: PolicyInfo,
    *,
    timeout_seconds: float = 3600,
    busy_poll_seconds: float = 2.0,
) -> dict[str, Any]:
    """Link env to policy (or unlink it), resuming a stored operation; never posts twice for one change."""
    logger = get_run_logger()
    pp = services.powerplatform
    ckpt = services.checkpoints
    started = time.monotonic()
    deadline = started + timeout_seconds
    progress = ckpt.environment(env_id)
    if progress.get("status") == "succeeded":
        logger.info("%s: already done in this change, skipped.", env_id)
        return {**progress["row"], "status": "skipped-done"}
    row: dict[str, Any] = {"environment_id": env_id, "policy_after": policy.id if action == "link" else ""}
    try:
        env = pp.get_environment(env_id)
        before = progress.get("before") or environment_facts(env)
        if "before" not in progress:
            ckpt.update_environment(env_id, before=before)
        row.update(
            name=before["name"],
            geo=before["geo"],
            sku=before["sku"],
            key_managed_by_before=before["key_managed_by"],
            policy_before=before["policy"],
        )
        handle = OperationHandle.from_dict(progress["operation"]) if progress.get("operation") else None
        if handle is not None:
            status = pp.poll(handle)
            if status.state.lower() == "failed":
                logger.warning(
                    "%s: the earlier %s failed (%s); starting it again.", env_id, action, status.error_message
                )
                handle = None
        if handle is None:
            done = not (link_problems(env, policy.system_id) if action == "link" else unlink_problems(env))
            if done:
                row.update(status="already-done", key_managed_by_after=env.key_managed_by)
                ckpt.update_environment(env_id, status="succeeded", row=row)
                return row
            env = _wait_until_idle(services, env_id, deadline, busy_poll_seconds)
            if not (link_problems(env, policy.system_id) if action == "link" else unlink_problems(env)):
                row.update(status="already-done", key_managed_by_after=env.key_managed_by)
                ckpt.update_environment(env_id, status="succeeded", row=row)
                return row
            while True:
                try:
                    if action == "link":
                        handle = pp.start_link(env_id, policy.system_id)
                    else:
                        handle = pp.start_unlink(env_id, env.cmk.system_id if env.cmk else policy.system_id)
                    break
                except BusyError:
                    logger.info("%s: busy with another lifecycle operation; waiting.", env_id)
                    if time.monotonic() > deadline:
                        raise
                    env = _wait_until_idle(services, env_id, deadline, busy_poll_seconds)
                    time.sleep(busy_poll_seconds)
            ckpt.update_environment(env_id, operation=handle.to_dict(), status="in-flight")
        row["operation_id"] = handle.operation_id
        pp.wait(handle, max(1.0, deadline - time.monotonic()))
        env = pp.get_environment(env_id)
        problems = link_problems(env, policy.system_id) if action == "link" else unlink_problems(env)
        row["key_managed_by_after"] = env.key_managed_by
        if problems:
            raise OperationFailedError(
                f"{action} finished but verification failed: {'; '.join(problems)}", target=env_id
            )
        row["status"] = "succeeded"
    except CmkError as exc:
        row.update(status="failed", error=str(exc))
        logger.error("%s: %s failed: %s", env_id, action, exc)
    row["duration_seconds"] = round(time.monotonic() - started, 2)
    ckpt.update_environment(env_id, status=row["status"], row=row)
    return row
