"""Move a rotation's environments: a task per environment for small sets, a task per wave at scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prefect import get_run_logger

from cmk.domain.models import PolicyInfo
from cmk.domain.rows import EnvironmentRow
from cmk.moves.budget import FailureBudget
from cmk.moves.engine import SwapMethod
from cmk.moves.facts import must_finish
from cmk.moves.waves import plan_waves
from flows.parts.fanout import read_back, run_waves
from tasks.context import Services
from tasks.environments import move_one_environment, move_wave
from tasks.reports import Progress

FanOut = Literal["auto", "per-environment", "per-wave"]
PER_ENVIRONMENT_UP_TO = 50  # above this, "auto" batches: a task run per environment costs 10-20 ms and more
PER_ENVIRONMENT_MAX_CONCURRENCY = 32  # one worker thread per environment in flight
PER_WAVE_MAX_CONCURRENCY = 500
WAVE_SIZE = 250  # environments per task in per-wave mode (progress and UI granularity)


@dataclass
class MoveResult:
    """Every environment's row, and whether new work was halted."""

    rows: list[EnvironmentRow] = field(default_factory=list)
    halted: bool = False
    halt_reason: str = ""
    fanout: str = ""

    @property
    def failures(self) -> int:
        """How many environments failed."""
        return sum(1 for r in self.rows if r.status == "failed")


def choose_fanout(fanout: FanOut, count: int) -> Literal["per-environment", "per-wave"]:
    """The fan-out to use for count environments."""
    if fanout == "auto":
        return "per-environment" if count <= PER_ENVIRONMENT_UP_TO else "per-wave"
    return fanout


class _ThrottledProgress:
    """Advances the progress artifact about fifty times in all, not once per environment."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.step = max(1, total // 50)
        self.count = 0

    def __call__(self, row: EnvironmentRow) -> None:
        self.count += 1
        if self.progress is not None and self.count % self.step == 0:
            self.progress.advance(self.step)

    def finish(self) -> None:
        if self.progress is not None and self.count % self.step:
            self.progress.advance(self.count % self.step)


def move_environments(
    services: Services,
    env_ids: list[str],
    target: PolicyInfo,
    *,
    method: SwapMethod,
    fanout: FanOut,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    timeout_seconds: float,
    progress: Progress | None = None,
) -> MoveResult:
    """Canary first, then the rest under the concurrency cap, halting new work past the failure threshold."""
    chosen = choose_fanout(fanout, len(env_ids))
    if chosen == "per-environment":
        result = run_waves(
            services,
            env_ids,
            "link",
            target,
            concurrency=min(
                concurrency, PER_ENVIRONMENT_MAX_CONCURRENCY
            ),  # auto picks this mode only for small sets
            canary_size=canary_size,
            failure_threshold=failure_threshold,
            timeout_seconds=timeout_seconds,
            progress=progress,
            submit=lambda env_id: move_one_environment.submit(
                services, env_id, "link", target, method=method, timeout_seconds=timeout_seconds
            ),
        )
        return MoveResult(result.rows, result.halted, result.halt_reason, chosen)
    logger = get_run_logger()
    plan = plan_waves(env_ids, canary_size)
    budget = FailureBudget(failure_threshold)
    tick = _ThrottledProgress(progress, len(plan.all))
    waves: list[tuple[str, list[str]]] = [("canary", list(plan.canary))] if plan.canary else []
    rest = list(plan.rest)
    waves += [(f"wave-{i // WAVE_SIZE + 1}", rest[i : i + WAVE_SIZE]) for i in range(0, len(rest), WAVE_SIZE)]
    out = MoveResult(fanout=chosen)
    unfinished: list[int] = []  # not-started rows: read back at the end
    for name, wave in waves:
        if budget.halted:
            # A halt stops new starts, never an operation in flight or the link after an unlink.
            carried = [e for e in wave if must_finish(services.checkpoints.environment(e))]
            for e in wave:
                if e not in carried:
                    unfinished.append(len(out.rows))
                    out.rows.append(EnvironmentRow(e, status="not-started", error=budget.reason))
            wave = carried
            if not wave:
                continue
        rows = move_wave(
            services,
            name,
            wave,
            "link",
            target,
            method=method,
            concurrency=concurrency,
            timeout_seconds=timeout_seconds,
            budget=budget,
            on_row=tick,
        )
        out.rows += rows
        if name == "canary" and any(r.status == "failed" for r in rows) and len(waves) > 1:
            budget.halt("the canary wave failed; the remaining environments were not started.")
            logger.error(budget.reason)
    tick.finish()
    read_back(services, out.rows, unfinished)
    out.halted, out.halt_reason = budget.halted, budget.reason
    return out
