"""Bounded per-environment fan-out in waves: canary first, halt new work past the failure threshold."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Literal

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed

from cmk.domain.models import PolicyInfo
from cmk.domain.rows import EnvironmentRow
from cmk.moves.budget import FailureBudget
from cmk.moves.facts import must_finish
from cmk.moves.facts import read_back as read_back_row
from cmk.moves.waves import plan_waves
from tasks.context import Services
from tasks.environments import move_one_environment, read_environments
from tasks.reports import Progress


@dataclass
class FanOutResult:
    """Every environment's row, and whether the run stopped starting new work."""

    rows: list[EnvironmentRow] = field(default_factory=list)
    halted: bool = False
    halt_reason: str = ""

    @property
    def failures(self) -> int:
        """How many environments failed."""
        return sum(1 for r in self.rows if r.status == "failed")


PLANNED_FACTS = ("name", "geo", "sku", "key_managed_by_before")


def _row_from_future(future: PrefectFuture[EnvironmentRow], env_id: str) -> tuple[EnvironmentRow, bool]:
    """The task's row (True), or a failed row carrying the exception (False): no failure is dropped."""
    try:
        return future.result(), True
    except Exception as exc:
        return EnvironmentRow(env_id, status="failed", error=f"{type(exc).__name__}: {exc}"), False


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
    submit: Callable[[str], PrefectFuture[EnvironmentRow]] | None = None,
) -> FanOutResult:
    """Move environments wave by wave, a task each, with at most `concurrency` in flight.

    Every task runs the one move engine (cmk.moves.engine.EnvironmentMover) for its environment. `submit(env_id)`
    starts one environment's task and returns its future (default: move_one_environment for `action`, to
    `policy` when linking); it lets other flows reuse the waves, the cap and the threshold with their own
    task.
    """
    logger = get_run_logger()
    plan = plan_waves(environment_ids, canary_size)
    budget = FailureBudget(failure_threshold)
    target = policy if action == "link" else None
    rows: list[EnvironmentRow] = []
    unfinished: list[int] = []  # rows no mover finished: read back at the end

    def startable(env_id: str) -> bool:
        return not budget.halted or must_finish(services.checkpoints.environment(env_id))

    for wave_name, wave in (("canary", list(plan.canary)), ("main", list(plan.rest))):
        wave = [e for e in wave if startable(e)]
        if not wave:
            continue
        logger.info("Wave '%s': %d environment(s), concurrency %d.", wave_name, len(wave), concurrency)
        pending = list(wave)
        active: dict[PrefectFuture[EnvironmentRow], str] = {}
        while pending or active:
            while pending and len(active) < concurrency:
                env_id = pending.pop(0)
                if not startable(env_id):
                    continue  # reported not-started below
                future = (
                    submit(env_id)
                    if submit is not None
                    else move_one_environment.submit(
                        services, env_id, action, target, timeout_seconds=timeout_seconds
                    )
                )
                active[future] = env_id
            if not active:
                break
            finished = next(as_completed(list(active)))
            row, moved = _row_from_future(finished, active.pop(finished))
            if not moved:
                unfinished.append(len(rows))
            rows.append(row)
            if progress is not None:
                progress.advance()
            if row.status == "failed":
                halted = budget.halted
                budget.fail()
                if budget.halted and not halted:
                    logger.error(budget.reason)
        if wave_name == "canary" and any(r.status == "failed" for r in rows) and plan.rest:
            if not budget.halted:
                budget.halt("the canary wave failed; the remaining environments were not started.")
                logger.error(budget.reason)
    started = {r.environment_id.lower() for r in rows}
    for e in plan.all:
        if e.lower() not in started:
            unfinished.append(len(rows))
            rows.append(EnvironmentRow(e, status="not-started", error=budget.reason))
    read_back(services, rows, unfinished)
    return FanOutResult(rows, budget.halted, budget.reason)


def read_back(services: Services, rows: list[EnvironmentRow], unfinished: Collection[int]) -> None:
    """Rows no mover finished (not started, or its task crashed; by index) get the after-state shown now."""
    if not unfinished:
        return
    by_id = {e.id.lower(): e for e in read_environments(services)}
    for i in unfinished:
        env = by_id.get(rows[i].environment_id.lower())
        if env is not None:
            rows[i] = read_back_row(rows[i], env)


def merge_plan(plan_rows: list[EnvironmentRow], result_rows: list[EnvironmentRow]) -> list[EnvironmentRow]:
    """Result rows completed with the planned facts (name, geo, SKU, key before) where the task did not set them.

    The read-back after-state is kept even when empty: no policy after an unlink is a fact, not a gap.
    """
    planned = {r.environment_id.lower(): r for r in plan_rows}
    merged = []
    for row in result_rows:
        base = planned.get(row.environment_id.lower())
        facts = {k: getattr(base, k) for k in PLANNED_FACTS if base is not None and not getattr(row, k)}
        merged.append(replace(row, **facts))
    return merged
