"""Move many environments to a policy at once: start under a cap, poll state in bulk, verify, checkpoint.

One `EnvironmentMover.move()` call drives a whole wave without a thread or a task per environment:
- it starts at most `concurrency` link (or unlink) operations, writing each operation handle to the change's
  checkpoint the moment the service accepts it, so a killed run resumes by polling, never by posting again;
- it polls by Retry-After with ONE paged environment list per round when many operations are in flight (a GET
  per operation handle only when few are), falling back to the stored handle to learn why one failed;
- an environment busy with another lifecycle operation (409 OperationNotStartable, or linkStatus Linking or
  Unlinking) is waited for, never counted as done;
- every environment ends with a row: succeeded, already-done, skipped-done, failed (with the reason) or
  not-started (the failure budget halted new work). An environment half-way through unlink-then-link is always
  linked again, even after a halt: leaving it on the Microsoft key is not an option.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cmk.checkpoints import CheckpointStore
from cmk.errors import BusyError, CmkError
from cmk.models import EnvironmentInfo, OperationHandle, OperationStatus, PolicyInfo
from cmk.planning import threshold_crossed
from cmk.powerplatform import PowerPlatformService
from cmk.verification import link_problems, unlink_problems

SwapMethod = Literal["link", "unlink-then-link"]
Phase = Literal["unlink", "link"]
SWAP_METHODS: tuple[str, ...] = ("link", "unlink-then-link")


@dataclass
class FailureBudget:
    """Failures counted across waves; once the threshold is reached no new environment is started."""

    threshold: int
    failures: int = 0
    halted: bool = False
    reason: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def fail(self) -> None:
        """Count one failure and halt when the threshold is reached."""
        with self._lock:
            self.failures += 1
            if not self.halted and threshold_crossed(self.failures, self.threshold):
                self.halt(
                    f"{self.failures} failure(s) reached the threshold of {self.threshold}; "
                    "no new environment was started."
                )

    def halt(self, reason: str) -> None:
        """Stop starting new environments, saying why."""
        self.halted = True
        self.reason = self.reason or reason


def environment_facts(env: EnvironmentInfo) -> dict[str, Any]:
    """What a report shows about an environment before and after a move."""
    return {
        "name": env.display_name,
        "geo": env.location,
        "sku": env.sku,
        "key_managed_by": env.key_managed_by,
        "policy": env.cmk.policy_arm_id if env.cmk else "",
        "system_id": env.cmk.system_id if env.cmk else "",
    }


@dataclass
class _Slot:
    """One environment being moved in this call."""

    env_id: str
    row: dict[str, Any]
    phase: Phase = "link"
    handle: OperationHandle | None = None
    started: float = 0.0
    deadline: float = 0.0
    continuation: bool = False  # the link after an unlink: started even when the budget has halted


class EnvironmentMover:
    """Moves environments of one change to a target policy, in bulk, resumably."""

    def __init__(
        self,
        powerplatform: PowerPlatformService,
        checkpoints: CheckpointStore,
        target: PolicyInfo,
        *,
        method: SwapMethod = "link",
        timeout_seconds: float = 4 * 3600,
        bulk_from: int = 8,
        default_poll_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_row: Callable[[dict[str, Any]], None] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        if method not in SWAP_METHODS:
            raise ValueError(f"swap method must be one of {SWAP_METHODS}, not {method!r}.")
        if not target.system_id:
            raise ValueError(
                f"policy {target.name} has no systemId yet; wait for it before moving environments."
            )
        self.pp = powerplatform
        self.ckpt = checkpoints
        self.target = target
        self.method = method
        self.timeout = timeout_seconds
        self.bulk_from = max(1, bulk_from)
        self.default_poll = default_poll_seconds
        self.sleep = sleep
        self.clock = clock
        self.on_row = on_row
        self.log = logger or logging.getLogger(__name__)
        self._staged: dict[str, dict[str, Any]] = {}

    # -- checkpoint writes -----------------------------------------------------------------------------
    def _stage(self, env_id: str, **fields: Any) -> None:
        """Queue checkpoint fields; written with the next accepted operation or at the end of the round."""
        self._staged.setdefault(env_id.lower(), {}).update(fields)

    def _flush(self) -> None:
        """Write every staged checkpoint field at once."""
        staged, self._staged = self._staged, {}
        self.ckpt.update_environments(staged)

    # -- reading state -------------------------------------------------------------------------------
    def _read(self, env_ids: list[str]) -> dict[str, EnvironmentInfo]:
        """Current state of these environments: one paged list for many, a GET each for a few."""
        if len(env_ids) >= self.bulk_from:
            return {e.id.lower(): e for e in self.pp.list_environments()}
        out: dict[str, EnvironmentInfo] = {}
        for env_id in env_ids:
            try:
                out[env_id.lower()] = self.pp.get_environment(env_id)
            except CmkError as exc:
                if getattr(exc, "status", None) != 404:
                    raise
        return out

    # -- rows ----------------------------------------------------------------------------------------
    def _finish(
        self,
        slot: _Slot,
        status: str,
        budget: FailureBudget,
        rows: dict[str, dict[str, Any]],
        *,
        env: EnvironmentInfo | None = None,
        error: str = "",
        keep_in_flight: bool = False,
    ) -> None:
        row = slot.row
        row["status"] = status
        if error:
            row["error"] = error
        if env is not None:
            row["key_managed_by_after"] = env.key_managed_by
            row["policy_after"] = (env.cmk.policy_arm_id or "") if env.cmk else ""
        if slot.started:
            row["duration_seconds"] = round(self.clock() - slot.started, 2)
        stored = "in-flight" if keep_in_flight else ("succeeded" if status != "failed" else "failed")
        self._stage(slot.env_id, status=stored, row=row)
        rows[slot.env_id.lower()] = row
        if status == "failed":
            self.log.error("%s: %s", slot.env_id, error)
            budget.fail()
        if self.on_row is not None:
            self.on_row(row)

    def _done(self, env: EnvironmentInfo) -> bool:
        return not link_problems(env, self.target.system_id or "")

    # -- starting ------------------------------------------------------------------------------------
    def _start(
        self,
        slot: _Slot,
        env: EnvironmentInfo | None,
        active: dict[str, _Slot],
        waiting: dict[str, _Slot],
        rows: dict[str, dict[str, Any]],
        budget: FailureBudget,
    ) -> None:
        """POST the next operation for slot (or record why not); never while another operation runs."""
        if env is None:
            self._finish(
                slot, "failed", budget, rows, error="the environment no longer exists or is not visible"
            )
            return
        if not slot.started:
            slot.started = self.clock()
            slot.deadline = slot.started + self.timeout
        if slot.phase == "link" and self._done(env):
            self._finish(slot, "succeeded" if slot.continuation else "already-done", budget, rows, env=env)
            return
        if env.operation_running:
            self._wait(slot, waiting, f"linkStatus {env.cmk.status if env.cmk else ''}")
            return
        other = env.cmk.system_id if env.cmk and (env.cmk.status or "").lower() == "linked" else None
        if slot.phase == "link" and self.method == "unlink-then-link" and other and not slot.continuation:
            slot.phase = "unlink"
        try:
            if slot.phase == "unlink":
                handle = self.pp.start_unlink(slot.env_id, other or "", current=env)
            else:
                handle = self.pp.start_link(slot.env_id, self.target.system_id or "", current=env)
        except BusyError:
            self._wait(slot, waiting, "409 OperationNotStartable")
            return
        except CmkError as exc:
            self._finish(slot, "failed", budget, rows, error=f"{slot.phase} was refused: {exc}")
            return
        slot.handle = handle
        slot.row["operation_id"] = handle.operation_id or ""
        # The handle is on disk before anything else happens: a killed run resumes it, never posts again.
        self._stage(slot.env_id, operation=handle.to_dict(), phase=slot.phase, status="in-flight")
        self._flush()
        active[slot.env_id.lower()] = slot

    def _wait(self, slot: _Slot, waiting: dict[str, _Slot], why: str) -> None:
        if slot.env_id.lower() not in waiting:
            self.log.info("%s: busy with another lifecycle operation (%s); waiting for it.", slot.env_id, why)
        waiting[slot.env_id.lower()] = slot

    # -- settling ------------------------------------------------------------------------------------
    def _settle(
        self,
        slot: _Slot,
        env: EnvironmentInfo | None,
        status: OperationStatus | None,
        pending: deque[_Slot],
        active: dict[str, _Slot],
        rows: dict[str, dict[str, Any]],
        budget: FailureBudget,
    ) -> None:
        """Decide about an in-flight slot from the environment's state, polling its handle only if needed."""
        assert slot.handle is not None
        if env is not None and env.operation_running and status is None:
            return self._check_deadline(slot, "Running", active, rows, budget)
        phase_done = env is not None and (
            not unlink_problems(env) if slot.phase == "unlink" else self._done(env)
        )
        if not phase_done:
            status = status or self.pp.poll(slot.handle)
            if not status.done:
                return self._check_deadline(slot, status.state, active, rows, budget)
            if env is None or status.succeeded:
                env = self.pp.get_environment(slot.env_id)
                phase_done = not unlink_problems(env) if slot.phase == "unlink" else self._done(env)
            if not phase_done:
                del active[slot.env_id.lower()]
                if status.succeeded:
                    problems = (
                        unlink_problems(env)
                        if slot.phase == "unlink"
                        else link_problems(env, self.target.system_id or "")
                    )
                    error = f"{slot.phase} finished but verification failed: {'; '.join(problems)}"
                else:
                    error = (
                        f"the {slot.phase} operation ended {status.state}: "
                        f"{status.error_message or status.error_code or 'no reason given'}"
                    )
                return self._finish(slot, "failed", budget, rows, env=env, error=error)
        del active[slot.env_id.lower()]
        if slot.phase == "unlink":
            slot.phase, slot.continuation, slot.handle = "link", True, None
            self._stage(slot.env_id, phase="link", operation=None, status="unlinked")
            pending.appendleft(slot)
            return None
        return self._finish(slot, "succeeded", budget, rows, env=env)

    def _check_deadline(
        self,
        slot: _Slot,
        state: str,
        active: dict[str, _Slot],
        rows: dict[str, dict[str, Any]],
        budget: FailureBudget,
    ) -> None:
        if self.clock() < slot.deadline:
            return
        del active[slot.env_id.lower()]
        self._finish(
            slot,
            "failed",
            budget,
            rows,
            error=(
                f"the {slot.phase} is still {state} after {self.timeout:g} s; it keeps running. Run the flow "
                "again with the same change id: it resumes polling the stored operation, it never posts again."
            ),
            keep_in_flight=True,
        )

    # -- the loop ------------------------------------------------------------------------------------
    def move(
        self, env_ids: list[str], *, concurrency: int, budget: FailureBudget | None = None
    ) -> list[dict[str, Any]]:
        """Move every environment in env_ids with at most `concurrency` operations in flight; one row each."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1.")
        budget = budget or FailureBudget(0)
        rows: dict[str, dict[str, Any]] = {}
        snapshot = self._read(env_ids)
        pending: deque[_Slot] = deque()
        active: dict[str, _Slot] = {}
        waiting: dict[str, _Slot] = {}
        for env_id in env_ids:
            progress = self.ckpt.environment(env_id)
            if progress.get("status") == "succeeded" and progress.get("row"):
                row = {**progress["row"], "status": "skipped-done"}
                rows[env_id.lower()] = row
                if self.on_row is not None:
                    self.on_row(row)
                continue
            env = snapshot.get(env_id.lower())
            before = progress.get("before") or (environment_facts(env) if env else {})
            if env is not None and "before" not in progress:
                self._stage(env_id, before=before)
            slot = _Slot(
                env_id=env_id,
                row={
                    "environment_id": env_id,
                    "name": before.get("name", ""),
                    "geo": before.get("geo", ""),
                    "sku": before.get("sku", ""),
                    "key_managed_by_before": before.get("key_managed_by", ""),
                    "policy_before": before.get("policy", ""),
                    "policy_after": self.target.id,
                },
            )
            phase = progress.get("phase") or "link"
            slot.phase = phase
            slot.continuation = phase == "link" and progress.get("status") == "unlinked"
            if progress.get("status") == "in-flight" and progress.get("operation"):
                slot.handle = OperationHandle.from_dict(progress["operation"])
                slot.row["operation_id"] = slot.handle.operation_id or ""
                slot.started = self.clock()
                slot.deadline = slot.started + self.timeout
                slot.continuation = slot.continuation or phase == "unlink"
                active[env_id.lower()] = slot  # resumed by polling its stored handle
            elif slot.continuation:
                pending.appendleft(slot)
            else:
                pending.append(slot)

        while pending or active or waiting:
            while pending and len(active) < concurrency:
                if budget.halted and not pending[0].continuation:
                    break
                slot = pending.popleft()
                self._start(slot, snapshot.get(slot.env_id.lower()), active, waiting, rows, budget)
            if budget.halted and not active and not waiting and not any(s.continuation for s in pending):
                break
            if not active and not waiting:
                continue
            self._flush()
            self.sleep(self._delay(active))
            watched = list(active) + list(waiting)
            bulk = len(watched) >= self.bulk_from
            fresh = self._read(watched) if bulk else {}
            snapshot.update(fresh)
            for key, slot in list(active.items()):
                status = None
                env = fresh.get(key) if bulk else None
                if not bulk:
                    status = self.pp.poll(slot.handle) if slot.handle else None
                    if status is not None and not status.done:
                        self._check_deadline(slot, status.state, active, rows, budget)
                        continue
                    env = self.pp.get_environment(slot.env_id)
                self._settle(slot, env, status, pending, active, rows, budget)
            for key, slot in list(waiting.items()):
                env = fresh.get(key) if bulk else self.pp.get_environment(slot.env_id)
                if env is not None:
                    snapshot[key] = env
                if env is not None and env.operation_running:
                    if self.clock() > slot.deadline:
                        del waiting[key]
                        self._finish(
                            slot,
                            "failed",
                            budget,
                            rows,
                            error=(
                                f"stayed busy with another lifecycle operation for {self.timeout:g} s; run "
                                "again later with the same change id"
                            ),
                        )
                    continue
                del waiting[key]
                if slot.continuation:
                    pending.appendleft(slot)
                else:
                    pending.append(slot)
        for slot in pending:
            if slot.env_id.lower() not in rows:
                slot.row.update(status="not-started", error=budget.reason)
                rows[slot.env_id.lower()] = slot.row
                if self.on_row is not None:
                    self.on_row(slot.row)
        self._flush()
        return [rows[e.lower()] for e in env_ids if e.lower() in rows]

    def _delay(self, active: dict[str, _Slot]) -> float:
        """Seconds until the next poll: the smallest Retry-After the service gave, else the default."""
        hints = [s.handle.retry_after for s in active.values() if s.handle and s.handle.retry_after]
        return max(0.2, min(hints) if hints else self.default_poll)
