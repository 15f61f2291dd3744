"""Bounded per-environment fan-out in waves: canary first, halt new work past the failure threshold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed

from cmk.models import EnvironmentInfo, PolicyInfo
from cmk.moves import environment_facts
from cmk.planning import plan_waves, threshold_crossed
from tasks.context import Services
from tasks.environments import move_environment
from tasks.reports import Progress


@dataclass
class FanOutResult:
    """Every environment's row, and whether the run stopped starting new work."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    halted: bool = False
    halt_reason: str = ""

    @property
    def failures(self) -> int:
        """How many environments failed."""
        return sum(1 for r in self.rows if r.get("status") == "failed")


def _row_from_future(future: PrefectFuture[dict[str, Any]], env_id: str) -> dict[str, Any]:
    """The task's row, or a failed row carrying the exception: no failure is dropped."""
    try:
        return future.result()
    except Exception as exc:
        return {"environment_id": env_id, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def run_waves(
    services: Services,
    environment_ids: list[str],
    action: Literal["link", "unlink"],
    policy: PolicyInfo,
    *,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    timeout_seconds: float,
    progress: Progress | None = None,
    submit: Callable[[str], PrefectFuture[dict[str, Any]]] | None = None,
) -> FanOutResult:
    """Move environments wave by wave with at most `concurrency` in flight.

    `submit(env_id)` starts one environment's task and returns its future (default: move_environment for
    `action` and `policy`); it lets other flows reuse the waves, the cap and the threshold with their own task.
    """
    logger = get_run_logger()
    plan = plan_waves(environment_ids, canary_size)
    result = FanOutResult()
    waves = [("canary", list(plan.canary)), ("main", list(plan.rest))]
    for wave_name, wave in waves:
        if not wave:
            continue
        if result.halted:
            break
        logger.info("Wave '%s': %d environment(s), concurrency %d.", wave_name, len(wave), concurrency)
        pending = list(wave)
        active: dict[PrefectFuture[dict[str, Any]], str] = {}
        while pending or active:
            while pending and len(active) < concurrency and not result.halted:
                env_id = pending.pop(0)
                if submit is not None:
                    future = submit(env_id)
                else:
                    future = move_environment.submit(
                        services, env_id, action, policy, timeout_seconds=timeout_seconds
                    )
                active[future] = env_id
            if not active:
                break
            finished = next(as_completed(list(active)))
            env_id = active.pop(finished)
            row = _row_from_future(finished, env_id)
            result.rows.append(row)
            if progress is not None:
                progress.advance()
            if threshold_crossed(result.failures, failure_threshold) and not result.halted:
                result.halted = True
                result.halt_reason = (
                    f"{result.failures} failure(s) reached the threshold of {failure_threshold}; "
                    "no new environment was started."
                )
                logger.error(result.halt_reason)
        if wave_name == "canary" and result.failures and plan.rest and not result.halted:
            result.halted = True
            result.halt_reason = "the canary wave failed; the remaining environments were not started."
            logger.error(result.halt_reason)
    started = {r["environment_id"].lower() for r in result.rows}
    for env_id in plan.all:
        if env_id.lower() not in started:
            result.rows.append(
                {"environment_id": env_id, "status": "not-started", "error": result.halt_reason}
            )
    return result


def plan_row(env: EnvironmentInfo, key_managed_by: str | None = None) -> dict[str, Any]:
    """The planned row of an environment: its facts before the change."""
    return {
        "environment_id": env.id,
        **environment_facts(env),
        "key_managed_by_before": key_managed_by or env.key_managed_by,
    }


def merge_plan(plan_rows: list[dict[str, Any]], result_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Result rows completed with the planned facts (name, geo, SKU) where the task did not set them."""
    planned = {r["environment_id"].lower(): r for r in plan_rows}
    merged = []
    for row in result_rows:
        base = planned.get(row["environment_id"].lower(), {})
        merged.append(
            {
                **{k: base.get(k, "") for k in ("name", "geo", "sku", "key_managed_by_before")},
                **{k: v for k, v in row.items() if v not in (None, "")},
            }
        )
    return merged
