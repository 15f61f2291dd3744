"""Move a rotation's environments: a task per environment for small sets; at scale the canary, then one window."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

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
WAVE_SIZE = 250  # environments per reported wave in per-wave mode (one window slides over all of them)


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
    rest = list(plan.rest)
    waves = [(f"wave-{i // WAVE_SIZE + 1}", rest[i : i + WAVE_SIZE]) for i in range(0, len(rest), WAVE_SIZE)]
    out = MoveResult(fanout=chosen)
    if plan.canary:
        rows = move_wave(
            services,
            "canary",
            list(plan.canary),
            "link",
            target,
            method=method,
            concurrency=concurrency,
            timeout_seconds=timeout_seconds,
            budget=budget,
            on_row=tick,
        )
        out.rows += rows
        if any(r.status == "failed" for r in rows) and rest:
            budget.halt("the canary wave failed; the remaining environments were not started.")
            logger.error(budget.reason)
    if waves:
        # One sliding window over every wave: a wave is what is reported and where a halt shows, not a
        # barrier. After a halt only what must be finished (an operation in flight, the link after an
        # unlink) is handed to the mover; the others are not started.
        carried = [e for e in rest if not budget.halted or must_finish(services.checkpoints.environment(e))]
        report = WaveReport(waves, logger)

        def on_row(row: EnvironmentRow) -> None:
            tick(row)
            report(row)

        rows = (
            move_wave(
                services,
                f"{waves[0][0]}..{waves[-1][0]}" if len(waves) > 1 else waves[0][0],
                carried,
                "link",
                target,
                method=method,
                concurrency=concurrency,
                timeout_seconds=timeout_seconds,
                budget=budget,
                on_row=on_row,
            )
            if carried
            else []
        )
        by_id = {r.environment_id.lower(): r for r in rows}
        unfinished: list[int] = []  # not-started rows: read back at the end
        for env_id in rest:
            row = by_id.get(env_id.lower())
            if row is None:
                unfinished.append(len(out.rows))
                row = EnvironmentRow(env_id, status="not-started", error=budget.reason)
            out.rows.append(row)
        report.finish(out.rows[-len(rest) :], budget)
        read_back(services, out.rows, unfinished)
    tick.finish()
    out.halted, out.halt_reason = budget.halted, budget.reason
    return out


class WaveReport:
    """Per-wave counts while the window slides: a line when a wave's last environment ends, and at a halt."""

    def __init__(self, waves: list[tuple[str, list[str]]], logger: Any) -> None:
        self.logger = logger
        self.wave_of = {e.lower(): name for name, wave in waves for e in wave}
        self.size = {name: len(wave) for name, wave in waves}
        self.counts: dict[str, Counter[str]] = {name: Counter() for name, _ in waves}
        self.logger.info(
            "%d wave(s) of up to %d environments, moved as one sliding window.", len(waves), WAVE_SIZE
        )

    def __call__(self, row: EnvironmentRow) -> None:
        name = self.wave_of.get(row.environment_id.lower())
        if name is None:
            return
        counts = self.counts[name]
        counts[row.status] += 1
        if sum(counts.values()) == self.size[name]:
            self.logger.info("Wave %s done: %s.", name, _counts(counts))

    def finish(self, rows: list[EnvironmentRow], budget: FailureBudget) -> None:
        """Waves the halt left unfinished: their counts including not-started."""
        if not budget.halted:
            return
        for name in self.counts:
            final = Counter(r.status for r in rows if self.wave_of.get(r.environment_id.lower()) == name)
            if final.get("not-started"):
                self.logger.warning("Wave %s halted: %s.", name, _counts(final))


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
