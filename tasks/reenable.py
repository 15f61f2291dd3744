"""Re-enable one locked environment after key access is back, resuming a stored operation; never posts twice."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.errors import BusyError, CmkError, ConflictError, OperationFailedError
from cmk.lockdown import LockRow
from cmk.models import OperationHandle
from tasks.context import Services


def _enabled(services: Services, env_id: str) -> tuple[bool, Any]:
    env = services.powerplatform.get_environment(env_id)
    return (env.runtime_state or "").lower() == "enabled", env


@task(name="reenable-environment", task_run_name="reenable-{env_id}", cache_policy=NO_CACHE)
def reenable_environment(
    services: Services, env_id: str, *, timeout_seconds: float = 1800, busy_poll_seconds: float = 2.0
) -> LockRow:
    """Bring a locked environment back online (POST enable once, then wait), and verify it is Enabled."""
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
