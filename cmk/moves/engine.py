"""The one engine that moves environments: link to a policy, swap policies, or unlink to the Microsoft key.

One `EnvironmentMover.move()` call drives a whole wave (or one environment) without a thread per environment:
- it starts at most `concurrency` link (or unlink) operations, writing each operation handle to the change's
  checkpoint the moment the service accepts it, so a killed run resumes by polling, never by posting again;
- it is a sliding window, not rounds: an environment whose operation ended is replaced by the next one at
  once, so up to `concurrency` operations stay in flight until the set runs out;
- it checks an operation when it is due (its Retry-After, or the shortest operation time seen in this run),
  reading the environment itself: ONE paged environment list when enough are due to pay for its pages, else
  a GET of each due environment; the stored handle is polled only to learn why one did not end as asked;
- when the client paces its requests (a rate limit is known or was signalled by 429), checks that fall due
  close together are read together, so polling leaves the budget to the operations;
- an environment busy with another lifecycle operation (409 OperationNotStartable, or linkStatus Linking or
  Unlinking) is waited for, never counted as done;
- every environment ends with a row: succeeded, already-done, skipped-done, failed (with the reason) or
  not-started (the failure budget halted new work). `policy_after` and `key_managed_by_after` are what the
  service showed at the end, never the intended target.

Unlink-then-link never leaves an environment on the Microsoft-managed key by choice. Once its unlink
succeeded (checkpoint `unlinked`), the link to the new policy is always carried out, even after the failure
budget halted new starts. A link that fails (refused, or ended Failed) is tried again, `LINK_ATTEMPTS` times
in all, within the environment's deadline and after a poll delay; when every attempt failed, the environment
is linked back to the policy it had before (its systemId is kept in the checkpoint's `before` facts) and
reported failed with both reasons. Only when that re-link fails too does the row say the environment is on
the Microsoft-managed key. The phase (`unlink`, `link`, `relink`) and the attempt count live in the
checkpoint, so a resumed run continues where the killed one stopped.

Re-runs with the same change id: an environment recorded as succeeded is skipped (`skipped-done`); an
in-flight operation is resumed by polling its stored handle. A stored operation that ended Failed, or an
environment the earlier run reported failed, is started again as a new attempt (for the link after an unlink
it counts towards `LINK_ATTEMPTS`). A failure is never trusted as final; nothing is posted while an operation
still runs.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cmk.clients.powerplatform import PowerPlatformService
from cmk.domain.models import EnvironmentInfo, OperationHandle, OperationStatus, PolicyInfo
from cmk.domain.rows import EnvironmentRow
from cmk.errors import BusyError, CmkError
from cmk.moves.budget import FailureBudget
from cmk.moves.facts import environment_facts, policy_label, read_back
from cmk.state.checkpoints import CheckpointStore

SwapMethod = Literal["link", "unlink-then-link"]
Action = Literal["link", "unlink"]
Phase = Literal["unlink", "link", "relink"]
SWAP_METHODS: tuple[str, ...] = ("link", "unlink-then-link")
ACTIONS: tuple[str, ...] = ("link", "unlink")
LINK_ATTEMPTS = 3  # the link after an unlink: the first try and two more, then back to the old policy
_EARLY = 0.02  # checks due this close are taken in the same round


def _linked_system_id(env: EnvironmentInfo) -> str | None:
    """The systemId of the policy env is linked to, or None."""
    return env.cmk.system_id if env.cmk and (env.cmk.status or "").lower() == "linked" else None


@dataclass
class _Slot:
    """One environment being moved in this call."""

    env_id: str
    row: EnvironmentRow
    before: dict[str, Any]
    phase: Phase = "link"
    handle: OperationHandle | None = None
    started: float = 0.0
    deadline: float = 0.0
    continuation: bool = False  # unlinked by this change: linked again even when the budget has halted
    attempts: int = 0  # failed link attempts to the target after the unlink
    link_error: str = ""  # why the last of those attempts failed
    resumed: bool = False  # the handle was stored by an earlier run
    not_before: float = 0.0  # no new POST before this time (a retry's poll delay)
    accepted: float = 0.0  # when the service accepted the current operation
    next_check: float = 0.0  # when to read this environment next

    @property
    def key(self) -> str:
        return self.env_id.lower()


@dataclass
class _Run:
    """The state of one move() call."""

    budget: FailureBudget
    snapshot: dict[str, EnvironmentInfo]
    rows: dict[str, EnvironmentRow] = field(default_factory=dict)
    pending: deque[_Slot] = field(default_factory=deque)
    active: dict[str, _Slot] = field(default_factory=dict)
    waiting: dict[str, _Slot] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)  # rows whose after-state must still be read back

    def queue(self, slot: _Slot) -> None:
        """Back in line to start; continuations first, they are never held back."""
        if slot.continuation:
            self.pending.appendleft(slot)
        else:
            self.pending.append(slot)


class EnvironmentMover:
    """Moves environments of one change to a target policy (or back to Microsoft), in bulk, resumably."""

    def __init__(
        self,
        powerplatform: PowerPlatformService,
        checkpoints: CheckpointStore,
        target: PolicyInfo | None,
        *,
        action: Action = "link",
        method: SwapMethod = "link",
        timeout_seconds: float = 4 * 3600,
        bulk_from: int = 8,
        default_poll_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_row: Callable[[EnvironmentRow], None] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, not {action!r}.")
        if method not in SWAP_METHODS:
            raise ValueError(f"swap method must be one of {SWAP_METHODS}, not {method!r}.")
        if action == "link" and (target is None or not target.system_id):
            name = target.name if target else "(none)"
            raise ValueError(f"policy {name} has no systemId yet; wait for it before moving environments.")
        self.pp = powerplatform
        self.ckpt = checkpoints
        self.target = target
        self.action = action
        self.method = method
        self.timeout = timeout_seconds
        self.bulk_from = max(1, bulk_from)
        self.default_poll = default_poll_seconds
        self.sleep = sleep
        self.clock = clock
        self.on_row = on_row
        self.log = logger or logging.getLogger(__name__)
        self._staged: dict[str, dict[str, Any]] = {}
        self._expected: float | None = None  # the shortest operation seen in this run (accepted -> seen done)

    @property
    def _target_sid(self) -> str:
        return (self.target.system_id or "") if self.target else ""

    @property
    def _target_name(self) -> str:
        return self.target.name if self.target else "the Microsoft-managed key"

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
        if not env_ids:
            return {}
        if len(env_ids) >= max(self.bulk_from, self._list_pages()):
            return {e.id.lower(): e for e in self.pp.list_environments()}
        return self._read_each(env_ids)

    def _read_each(self, env_ids: list[str]) -> dict[str, EnvironmentInfo]:
        """A GET of each environment; one that is gone is left out."""
        out: dict[str, EnvironmentInfo] = {}
        for env_id in env_ids:
            try:
                out[env_id.lower()] = self.pp.get_environment(env_id)
            except CmkError as exc:
                if getattr(exc, "status", None) != 404:
                    raise
        return out

    def _list_pages(self) -> int:
        """What one environment list costs in requests (pages of the last list; 1 before any)."""
        return max(1, int(getattr(self.pp, "list_pages", 0) or 1))

    def _paced(self) -> bool:
        """Whether the client paces its requests: then a request saved is throughput won."""
        pacing = getattr(self.pp, "pacing", None)
        return bool(pacing is not None and pacing.limited)

    # -- when to look --------------------------------------------------------------------------------
    def _hint(self, slot: _Slot, retry_after: float | None = None) -> float:
        """The service's poll delay for this operation (Retry-After), else the default."""
        return retry_after or (slot.handle.retry_after if slot.handle else None) or self.default_poll

    def _first_check(self, slot: _Slot) -> float:
        """When to look at a just-accepted operation: not before Retry-After, nor before the shortest seen."""
        return slot.accepted + max(self._hint(slot), self._expected or 0.0)

    def _recheck(self, slot: _Slot, retry_after: float | None = None) -> None:
        """Still running: look again after Retry-After, or sooner while it is just past the expected time."""
        now, hint = self.clock(), self._hint(slot, retry_after)
        expected = self._expected
        if expected and slot.accepted and now < slot.accepted + 1.5 * expected:
            hint = min(hint, max(0.1, 0.05 * expected))
        slot.next_check = now + hint

    def _learn(self, slot: _Slot) -> None:
        """Remember how long an operation of this run took, to look at the next ones when they are due."""
        if slot.accepted and not slot.resumed:
            took = self.clock() - slot.accepted
            if took > 0:
                self._expected = took if self._expected is None else min(self._expected, took)

    def _bulk_from(self) -> int:
        """How many due environments make one paged list cheaper than a GET each."""
        pages = self._list_pages()
        return max(self.bulk_from, math.ceil(pages / 2) if self._paced() else pages)

    def _wake(self, run: _Run) -> float:
        """When the next round is due: the first check, or when paced, when enough are due to share a list."""
        checks = sorted(s.next_check for s in (*run.active.values(), *run.waiting.values()))
        first = checks[0]
        if not self._paced():
            # Checks falling due within a twentieth of an operation share a round (and its checkpoint write).
            return first + min(0.5, 0.05 * (self._expected or 0.0))
        need = self._bulk_from()
        hints = [s.handle.retry_after for s in run.active.values() if s.handle and s.handle.retry_after]
        late = first + 2 * min(hints or [self.default_poll])  # a due check waits at most two poll delays
        return min(late, max(first, checks[need - 1])) if len(checks) >= need else late

    # -- what done means -----------------------------------------------------------------------------
    def _phase_system_id(self, slot: _Slot) -> str:
        """The systemId the slot's current phase links to ('' for an unlink)."""
        if slot.phase == "relink":
            return slot.before.get("system_id") or ""
        return "" if slot.phase == "unlink" else self._target_sid

    def _phase_problems(self, slot: _Slot, env: EnvironmentInfo) -> list[str]:
        """Why env does not (yet) show the slot's current phase done; empty when it does."""
        if slot.phase == "unlink":
            return env.unlink_problems()
        return env.link_problems(self._phase_system_id(slot))

    # -- rows ----------------------------------------------------------------------------------------
    def _finish(
        self,
        run: _Run,
        slot: _Slot,
        status: str,
        *,
        env: EnvironmentInfo | None = None,
        error: str = "",
        keep_in_flight: bool = False,
    ) -> None:
        """Write the slot's row; the after-state from env (read after the last write), else read back later."""
        run.active.pop(slot.key, None)
        run.waiting.pop(slot.key, None)
        row = replace(slot.row, status=status, error=error or slot.row.error)
        if env is not None:
            row = read_back(row, env)
            run.unread.discard(slot.key)
        else:
            run.unread.add(slot.key)
        if slot.started:
            row.duration_seconds = round(self.clock() - slot.started, 2)
        slot.row = row
        stored = "in-flight" if keep_in_flight else ("succeeded" if status != "failed" else "failed")
        self._stage(slot.env_id, status=stored, row=row.to_checkpoint())
        run.rows[slot.key] = row
        if status == "failed":
            self.log.error("%s: %s", slot.env_id, error)
            run.budget.fail()
        if self.on_row is not None:
            self.on_row(row)

    def _stranded(self, slot: _Slot) -> str:
        """The loud part of a row whose environment may be left on the Microsoft-managed key."""
        old = policy_label(slot.before.get("policy", "")) or "its old policy"
        return (
            f"THE ENVIRONMENT IS ON THE MICROSOFT-MANAGED KEY (unlinked from {old}). Run the flow again with "
            "the same change id to link it again, or link it by hand (POST .../enterprisePolicies/Encryption/"
            f"link with SystemId {self._target_sid} or the old {slot.before.get('system_id') or '(unknown)'}"
            ")."
        )

    # -- starting ------------------------------------------------------------------------------------
    def _start(self, run: _Run, slot: _Slot) -> None:
        """POST the next operation for slot (or record why not); never while another operation runs."""
        env = run.snapshot.get(slot.key)
        if env is None:
            self._finish(run, slot, "failed", error="the environment no longer exists or is not visible")
            return
        if not slot.started:
            slot.started = self.clock()
            slot.deadline = slot.started + self.timeout
        if slot.phase == "unlink" and self.action == "link":
            if env.unlink_problems():
                slot.phase = "link"  # decided again below from what the environment shows now
            else:
                self._unlinked(run, slot, requeue=False)  # the unlink of this swap is already done
        if not self._phase_problems(slot, env):
            if slot.phase == "relink":
                self._relinked(run, slot, env)
            else:
                done = "succeeded" if slot.continuation else "already-done"
                self._finish(run, slot, done, env=env)
            return
        if env.operation_running:
            self._wait(run, slot, f"linkStatus {env.cmk.status if env.cmk else ''}")
            return
        other = _linked_system_id(env)
        if slot.phase == "link" and self.method == "unlink-then-link" and other and not slot.continuation:
            slot.phase = "unlink"
        system_id = self._phase_system_id(slot)
        if slot.phase == "unlink":
            system_id = env.cmk.system_id if env.cmk else ""
            if not system_id:
                self._finish(
                    run,
                    slot,
                    "failed",
                    env=env,
                    error=f"no customer-managed key policy is linked (key managed by {env.key_managed_by}); "
                    "nothing to unlink",
                )
                return
        try:
            if slot.phase == "unlink":
                handle = self.pp.start_unlink(slot.env_id, system_id, current=env)
            else:
                handle = self.pp.start_link(slot.env_id, system_id, current=env)
        except BusyError:
            self._wait(run, slot, "409 OperationNotStartable")
            return
        except CmkError as exc:
            self._failed(run, slot, env, f"the {slot.phase} was refused: {exc}", operation_failed=False)
            return
        slot.handle, slot.resumed = handle, False
        slot.accepted = self.clock()
        slot.next_check = self._first_check(slot)
        slot.row.operation_id = handle.operation_id or ""
        # The handle is on disk before anything else happens: a killed run resumes it, never posts again.
        self._stage(
            slot.env_id,
            operation=handle.to_dict(),
            phase=slot.phase,
            status="in-flight",
            attempts=slot.attempts,
        )
        self._flush()
        run.active[slot.key] = slot

    def _wait(self, run: _Run, slot: _Slot, why: str) -> None:
        if slot.key not in run.waiting:
            self.log.info("%s: busy with another lifecycle operation (%s); waiting for it.", slot.env_id, why)
        slot.next_check = max(slot.not_before, self.clock() + self.default_poll)
        run.waiting[slot.key] = slot

    # -- phase changes and failures ------------------------------------------------------------------
    def _unlinked(self, run: _Run, slot: _Slot, *, requeue: bool = True) -> None:
        """The unlink of an unlink-then-link is done: the link to the target must follow, whatever happens."""
        slot.phase, slot.continuation, slot.handle, slot.resumed = "link", True, None, False
        self._stage(slot.env_id, phase="link", operation=None, status="unlinked", unlinked=True)
        if requeue:
            run.queue(slot)

    def _relinked(self, run: _Run, slot: _Slot, env: EnvironmentInfo) -> None:
        """Back on the old policy after the link to the target failed: a failed row, nothing stranded."""
        self._stage(slot.env_id, unlinked=False)
        old = policy_label(slot.before.get("policy", "")) or slot.before.get("system_id", "")
        self._finish(
            run,
            slot,
            "failed",
            env=env,
            error=(
                f"link to {self._target_name} failed {slot.attempts} time(s) ({slot.link_error}); "
                f"linked back to the old policy {old}"
            ),
        )

    def _retry_later(self, run: _Run, slot: _Slot, delay: float | None) -> None:
        """Start the slot's phase again after a poll delay (waiting also waits out a busy environment)."""
        slot.handle, slot.resumed = None, False
        slot.not_before = self.clock() + (delay or self.default_poll)
        slot.next_check = slot.not_before
        self._stage(
            slot.env_id,
            phase=slot.phase,
            operation=None,
            status="unlinked" if slot.continuation else "retrying",
            attempts=slot.attempts,
        )
        run.waiting[slot.key] = slot

    def _failed(
        self,
        run: _Run,
        slot: _Slot,
        env: EnvironmentInfo | None,
        error: str,
        *,
        operation_failed: bool,
        retry_after: float | None = None,
    ) -> None:
        """A phase failed: retry, link back to the old policy, start a stale operation again, or fail."""
        run.active.pop(slot.key, None)
        if slot.phase == "link" and slot.continuation:
            slot.attempts += 1
            slot.link_error = error
            if slot.attempts < LINK_ATTEMPTS and self.clock() < slot.deadline:
                self.log.warning(
                    "%s: link %d of %d to %s failed (%s); trying again.",
                    slot.env_id,
                    slot.attempts,
                    LINK_ATTEMPTS,
                    self._target_name,
                    error,
                )
                return self._retry_later(run, slot, retry_after)
            if slot.before.get("system_id"):
                self.log.warning(
                    "%s: link to %s failed %d time(s) (%s); linking it back to the old policy.",
                    slot.env_id,
                    self._target_name,
                    slot.attempts,
                    error,
                )
                slot.phase = "relink"
                slot.deadline = self.clock() + self.timeout  # the way back gets its own time
                self._stage(slot.env_id, link_error=error)
                return self._retry_later(run, slot, retry_after)
            return self._finish(
                run,
                slot,
                "failed",
                env=env,
                error=f"link to {self._target_name} failed {slot.attempts} time(s) ({error}); "
                f"no old policy is known to link back to. {self._stranded(slot)}",
            )
        if slot.resumed and operation_failed:
            self.log.warning(
                "%s: the %s stored by an earlier run ended (%s); starting it again.",
                slot.env_id,
                slot.phase,
                error,
            )
            return self._retry_later(run, slot, retry_after)
        if slot.phase == "relink":
            return self._finish(
                run,
                slot,
                "failed",
                env=env,
                error=f"link to {self._target_name} failed {slot.attempts} time(s) ({slot.link_error}); "
                f"linking back to the old policy failed too ({error}). {self._stranded(slot)}",
            )
        self._finish(run, slot, "failed", env=env, error=error)

    # -- settling ------------------------------------------------------------------------------------
    def _settle(
        self, run: _Run, slot: _Slot, env: EnvironmentInfo | None, status: OperationStatus | None
    ) -> None:
        """Decide about an in-flight slot from the environment's state, polling its handle only if needed."""
        assert slot.handle is not None
        if env is not None:
            run.snapshot[slot.key] = env
        if env is not None and env.operation_running and status is None:
            self._recheck(slot)
            return self._check_deadline(run, slot, "Running")
        phase_done = env is not None and not self._phase_problems(slot, env)
        if not phase_done:
            status = status or self.pp.poll(slot.handle)
            if not status.done:
                self._recheck(slot, status.retry_after)
                return self._check_deadline(run, slot, status.state)
            if env is None or status.succeeded:
                env = self.pp.get_environment(slot.env_id)
                run.snapshot[slot.key] = env
                phase_done = not self._phase_problems(slot, env)
            if not phase_done:
                if status.succeeded:
                    problems = "; ".join(self._phase_problems(slot, env))
                    error = f"the {slot.phase} finished but verification failed: {problems}"
                else:
                    reason = status.error_message or status.error_code or "no reason given"
                    error = f"the {slot.phase} operation ended {status.state}: {reason}"
                return self._failed(
                    run,
                    slot,
                    env,
                    error,
                    operation_failed=not status.succeeded,
                    retry_after=status.retry_after or slot.handle.retry_after,
                )
        run.active.pop(slot.key, None)
        assert env is not None
        self._learn(slot)
        if slot.phase == "unlink" and self.action == "link":
            return self._unlinked(run, slot)
        if slot.phase == "relink":
            return self._relinked(run, slot, env)
        return self._finish(run, slot, "succeeded", env=env)

    def _check_deadline(self, run: _Run, slot: _Slot, state: str) -> None:
        if self.clock() < slot.deadline:
            return
        stranded = f" {self._stranded(slot)}" if slot.phase == "relink" else ""
        self._finish(
            run,
            slot,
            "failed",
            error=(
                f"the {slot.phase} is still {state} after {self.timeout:g} s; it keeps running. Run the flow "
                "again with the same change id: it resumes polling the stored operation, it never posts again."
                f"{stranded}"
            ),
            keep_in_flight=True,
        )

    # -- loading -------------------------------------------------------------------------------------
    def _load(self, run: _Run, env_id: str) -> None:
        """Queue env_id as its checkpoint says: skip, resume its operation, continue its swap, or start."""
        progress = self.ckpt.environment(env_id)
        stored = progress.get("status")
        if stored == "succeeded" and progress.get("row"):
            row = replace(EnvironmentRow.of(progress["row"]), status="skipped-done")
            run.rows[env_id.lower()] = row
            if self.on_row is not None:
                self.on_row(row)
            return
        env = run.snapshot.get(env_id.lower())
        before = progress.get("before") or (environment_facts(env) if env else {})
        if env is not None and "before" not in progress:
            self._stage(env_id, before=before)
        slot = _Slot(
            env_id=env_id,
            before=before,
            row=EnvironmentRow(
                env_id,
                name=before.get("name") or "",
                geo=before.get("geo") or "",
                sku=before.get("sku") or "",
                key_managed_by_before=before.get("key_managed_by") or "",
                policy_before=before.get("policy") or "",
            ),
            phase="unlink" if self.action == "unlink" else "link",
        )
        unlinked = bool(progress.get("unlinked")) and self.action == "link"
        if stored == "in-flight" and progress.get("operation"):
            slot.phase = progress.get("phase") or slot.phase
            slot.continuation = unlinked or slot.phase == "relink"
            slot.attempts = int(progress.get("attempts") or 0)
            slot.link_error = progress.get("link_error") or ""
            slot.handle = OperationHandle.from_dict(progress["operation"])
            slot.resumed = True
            slot.row.operation_id = slot.handle.operation_id or ""
            slot.started = self.clock()
            slot.deadline = slot.started + self.timeout
            run.active[slot.key] = slot  # resumed by polling its stored handle
            return
        if unlinked:
            # Unlinked by this change and not yet linked again (also after a failed re-link): link it first.
            failed_before = stored == "failed"
            slot.phase = "link" if failed_before else (progress.get("phase") or "link")
            slot.continuation = True
            slot.attempts = 0 if failed_before else int(progress.get("attempts") or 0)
            slot.link_error = progress.get("link_error") or ""
        elif progress:
            self._stage(env_id, phase=slot.phase, operation=None, attempts=0)  # a new attempt from the start
        run.queue(slot)

    # -- the loop ------------------------------------------------------------------------------------
    def move(
        self, env_ids: list[str], *, concurrency: int, budget: FailureBudget | None = None
    ) -> list[EnvironmentRow]:
        """Move every environment in env_ids with at most `concurrency` operations in flight; one row each."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1.")
        run = _Run(budget=budget or FailureBudget(0), snapshot=self._read(env_ids))
        for env_id in env_ids:
            self._load(run, env_id)

        while run.pending or run.active or run.waiting:
            while run.pending and len(run.active) < concurrency:
                if run.budget.halted and not run.pending[0].continuation:
                    break
                self._start(run, run.pending.popleft())
            if run.budget.halted and not run.active and not run.waiting:
                if not any(s.continuation for s in run.pending):
                    break
            if not run.active and not run.waiting:
                continue
            self._flush()
            delay = self._wake(run) - self.clock()
            if delay > 0:
                self.sleep(delay)
            self._round(run)
        for slot in run.pending:
            if slot.key not in run.rows:
                slot.row = replace(slot.row, status="not-started", error=run.budget.reason)
                run.rows[slot.key] = slot.row
                run.unread.add(slot.key)
                if self.on_row is not None:
                    self.on_row(slot.row)
        self._read_back_rows(run)
        self._flush()
        return [run.rows[e.lower()] for e in env_ids if e.lower() in run.rows]

    def _round(self, run: _Run) -> None:
        """Look at what is due: settle what finished, release what stopped being busy."""
        now = self.clock() + _EARLY
        due_active = [s for s in run.active.values() if s.next_check <= now]
        due_waiting = [s for s in run.waiting.values() if s.next_check <= now]
        bulk = len(due_active) + len(due_waiting) >= self._bulk_from()
        if bulk:
            # The list shows every environment: settle all in flight, not only the due ones.
            fresh = {e.id.lower(): e for e in self.pp.list_environments()}
            run.snapshot.update(fresh)
            due_active, due_waiting = list(run.active.values()), list(run.waiting.values())
        else:
            fresh = self._read_each([s.env_id for s in (*due_active, *due_waiting)])
        for slot in due_active:
            if slot.key in run.active:
                self._settle(run, slot, fresh.get(slot.key), None)
        for slot in due_waiting:
            key = slot.key
            if key not in run.waiting:
                continue
            env = fresh.get(key)
            if env is not None:
                run.snapshot[key] = env
            busy = env is not None and env.operation_running
            if busy or self.clock() < slot.not_before:
                if busy and self.clock() > slot.deadline:
                    stranded = f" {self._stranded(slot)}" if slot.continuation else ""
                    self._finish(
                        run,
                        slot,
                        "failed",
                        env=env,
                        error=(
                            f"stayed busy with another lifecycle operation for {self.timeout:g} s; run "
                            f"again later with the same change id.{stranded}"
                        ),
                    )
                else:
                    slot.next_check = max(slot.not_before, self.clock() + self.default_poll)
                continue
            del run.waiting[key]
            run.queue(slot)
        self._flush()  # what this round learnt (e.g. unlinked) is on disk before the next POST

    def _read_back_rows(self, run: _Run) -> None:
        """Fill the after-state of rows not read since their last write: what the service shows now."""
        keys = [k for k in run.unread if k in run.rows]
        if not keys:
            return
        envs = self._read([run.rows[k].environment_id for k in keys])
        for key in keys:
            env = envs.get(key)
            if env is not None:
                run.rows[key] = read_back(run.rows[key], env)
            if run.rows[key].status != "not-started":
                self._stage(key, row=run.rows[key].to_checkpoint())
        run.unread.clear()
