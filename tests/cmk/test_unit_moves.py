"""The move engine (cmk.moves.engine.EnvironmentMover) on a fake Power Platform service and a fake clock: no HTTP."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cmk.domain.models import CmkLink, EnvironmentInfo, OperationHandle, OperationStatus, PolicyInfo
from cmk.domain.rows import EnvironmentRow
from cmk.errors import BusyError, InvalidRequestError
from cmk.moves.budget import FailureBudget
from cmk.moves.engine import LINK_ATTEMPTS, EnvironmentMover
from cmk.moves.facts import must_finish
from cmk.state.checkpoints import CheckpointStore
from tests.cmk import factories

OLD = factories.policy()
NEW = factories.policy(
    id=OLD.id.replace("ep-eu", "ep-eu-2"),
    name="ep-eu-2",
    system_id="/regions/europe/providers/Microsoft.PowerPlatform/enterprisePolicies/new",
)
OPERATION_SECONDS = 10.0


class Clock:
    """Fake monotonic time; sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakePowerPlatform:
    """Environments and their link/unlink operations in fake time; faults scripted per (kind, systemId)."""

    def __init__(self, clock: Clock, policies: list[PolicyInfo]) -> None:
        self.clock = clock
        self.policies = {p.system_id: p for p in policies}
        self.envs: dict[str, EnvironmentInfo] = {}
        self.ops: dict[str, dict[str, Any]] = {}
        self.posts: list[tuple[str, str, str]] = []  # (kind, env id, systemId)
        self.busy: dict[str, int] = {}  # env id -> how many POSTs answer 409
        self.faults: dict[tuple[str, str], list[str]] = {}  # (kind, systemId) -> "fail" | "refuse", in order

    # -- set-up ---------------------------------------------------------------------------------------
    def add(self, env_id: str, policy: PolicyInfo | None) -> None:
        cmk = CmkLink(policy.id, policy.system_id, "Linked", "europe") if policy else None
        self.envs[env_id] = factories.env(
            id=env_id, display_name=env_id, cmk=cmk, key_managed_by="Customer" if policy else "Microsoft"
        )

    def fault(self, kind: str, policy: PolicyInfo, *outcomes: str) -> None:
        self.faults.setdefault((kind, policy.system_id or ""), []).extend(outcomes)

    def linked_to(self, env_id: str) -> str | None:
        env = self.get_environment(env_id)
        return env.cmk.system_id if env.cmk and env.cmk.status == "Linked" else None

    # -- the service --------------------------------------------------------------------------------
    def _tick(self) -> None:
        for op in self.ops.values():
            if op["state"] == "Running" and self.clock.now >= op["ends"]:
                env = self.envs[op["env"]]
                if op["fail"]:
                    op["state"] = "Failed"
                    self.envs[op["env"]] = replace(env, cmk=op["previous"], runtime_state="Enabled")
                elif op["kind"] == "link":
                    target = self.policies[op["sid"]]
                    link = CmkLink(target.id, target.system_id, "Linked", "europe")
                    self.envs[op["env"]] = replace(
                        env, cmk=link, key_managed_by="Customer", runtime_state="Enabled"
                    )
                    op["state"] = "Succeeded"
                else:
                    self.envs[op["env"]] = replace(
                        env, cmk=None, key_managed_by="Microsoft", runtime_state="Enabled"
                    )
                    op["state"] = "Succeeded"

    def list_environments(self) -> list[EnvironmentInfo]:
        self._tick()
        return list(self.envs.values())

    def get_environment(self, env_id: str) -> EnvironmentInfo:
        self._tick()
        return self.envs[env_id]

    def _post(self, kind: str, env_id: str, system_id: str) -> OperationHandle:
        self._tick()
        self.posts.append((kind, env_id, system_id))
        env = self.envs[env_id]
        if self.busy.get(env_id, 0) > 0 or env.operation_running:
            self.busy[env_id] = max(0, self.busy.get(env_id, 0) - 1)
            raise BusyError("409 OperationNotStartable", status=409, target=env_id)
        queued = self.faults.get((kind, system_id)) or []
        outcome = queued.pop(0) if queued else ""
        if outcome == "refuse":
            raise InvalidRequestError("Injected: storage account unavailable.", status=400, target=env_id)
        op_id = f"op-{len(self.ops) + 1}"
        self.ops[op_id] = {
            "env": env_id,
            "kind": kind,
            "sid": system_id,
            "state": "Running",
            "ends": self.clock.now + OPERATION_SECONDS,
            "fail": outcome == "fail",
            "previous": env.cmk,
        }
        target = self.policies.get(system_id)
        showing = "Linking" if kind == "link" else "Unlinking"
        link = CmkLink(target.id if target else None, system_id, showing, "europe")
        self.envs[env_id] = replace(env, cmk=link, runtime_state="Disabled")
        return OperationHandle(env_id, kind, f"https://bap/ops/{op_id}", 5.0, op_id)  # type: ignore[arg-type]

    def start_link(self, env_id: str, system_id: str, *, current: Any = None) -> OperationHandle:
        return self._post("link", env_id, system_id)

    def start_unlink(self, env_id: str, system_id: str, *, current: Any = None) -> OperationHandle:
        return self._post("unlink", env_id, system_id)

    def poll(self, handle: OperationHandle) -> OperationStatus:
        self._tick()
        op = self.ops[handle.operation_id or ""]
        if op["state"] == "Failed":
            return OperationStatus("Failed", "CustomerManagedKeyInaccessible", "Injected: key unreachable.")
        return OperationStatus(op["state"], retry_after=5.0)

    def posts_of(self, kind: str, env_id: str) -> list[str]:
        return [sid for k, e, sid in self.posts if k == kind and e == env_id]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pp(clock: Clock) -> FakePowerPlatform:
    return FakePowerPlatform(clock, [OLD, NEW])


@pytest.fixture
def ckpt(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path, "CHG-1", "rotate")


def mover(
    pp: FakePowerPlatform,
    ckpt: CheckpointStore,
    clock: Clock,
    target: PolicyInfo | None = NEW,
    **kw: Any,
) -> EnvironmentMover:
    return EnvironmentMover(
        pp,  # type: ignore[arg-type]
        ckpt,
        target,
        default_poll_seconds=2.0,
        sleep=clock.sleep,
        clock=clock,
        timeout_seconds=kw.pop("timeout_seconds", 3600),
        **kw,
    )


def reopen(ckpt: CheckpointStore) -> CheckpointStore:
    """The checkpoint as a new process would read it."""
    return CheckpointStore(ckpt.path.parent, ckpt.change_id, ckpt.flow)


def test_link_as_swap_moves_every_environment_with_one_post_each(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    for i in range(3):
        pp.add(f"e{i}", OLD)
    rows = mover(pp, ckpt, clock).move(["e0", "e1", "e2"], concurrency=2)
    assert [r.status for r in rows] == ["succeeded"] * 3
    assert all(pp.linked_to(f"e{i}") == NEW.system_id for i in range(3))
    assert [k for k, _, _ in pp.posts] == ["link"] * 3
    assert {r.policy_after for r in rows} == {NEW.id}
    assert {r.policy_before for r in rows} == {OLD.id}
    assert {r.key_managed_by_after for r in rows} == {"Customer"}
    assert isinstance(rows[0], EnvironmentRow) and rows[0].read_back
    assert rows[0].name and rows[0].operation_id and rows[0].duration_seconds != ""


def test_an_in_flight_handle_stored_by_a_killed_run_is_resumed_without_a_second_post(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    handle = pp.start_link("e1", NEW.system_id or "")
    ckpt.update_environment("e1", operation=handle.to_dict(), phase="link", status="in-flight")
    rows = mover(pp, reopen(ckpt), clock).move(["e1"], concurrency=1)
    assert rows[0].status == "succeeded"
    assert rows[0].operation_id == handle.operation_id
    assert pp.posts_of("link", "e1") == [NEW.system_id]  # only the killed run's POST


def test_a_busy_environment_is_waited_out_not_counted_done(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.busy["e1"] = 2
    rows = mover(pp, ckpt, clock).move(["e1"], concurrency=1)
    assert rows[0].status == "succeeded"
    assert len(pp.posts_of("link", "e1")) == 3  # two 409s, then accepted
    assert pp.linked_to("e1") == NEW.system_id


def test_the_failure_budget_halts_new_starts_and_the_rest_are_not_started(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    for i in range(4):
        pp.add(f"e{i}", OLD)
    pp.fault("link", NEW, "refuse")
    budget = FailureBudget(1)
    rows = mover(pp, ckpt, clock).move(["e0", "e1", "e2", "e3"], concurrency=1, budget=budget)
    assert [r.status for r in rows] == ["failed", "not-started", "not-started", "not-started"]
    assert budget.halted and "threshold of 1" in rows[1].error
    assert [e for _, e, _ in pp.posts] == ["e0"]
    for row in rows[1:]:  # read back, not the intended target
        assert row.policy_after == OLD.id and row.key_managed_by_after == "Customer"


def test_a_failed_link_gives_a_failed_row_with_the_reason_and_the_state_read_back(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.fault("link", NEW, "fail")
    [row] = mover(pp, ckpt, clock).move(["e1"], concurrency=1)
    assert row.status == "failed"
    assert "the link operation ended Failed: Injected: key unreachable." in row.error
    assert row.policy_after == OLD.id  # a failed link leaves it on its previous policy
    assert len(pp.posts_of("link", "e1")) == 1  # a plain link is not retried within the run


def test_unlink_then_link_resumes_the_link_from_the_checkpoint_after_the_unlink(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.add("e2", OLD)
    first = mover(pp, ckpt, clock, method="unlink-then-link")
    first.pp = _KilledAfterUnlink(pp)  # type: ignore[assignment]
    with pytest.raises(_Killed):
        first.move(["e1", "e2"], concurrency=2)
    assert pp.linked_to("e1") is None and pp.get_environment("e1").key_managed_by == "Microsoft"
    stored = reopen(ckpt).environment("e1")
    assert stored["status"] == "unlinked" and stored["phase"] == "link"
    assert stored["before"]["system_id"] == OLD.system_id

    halted = FailureBudget(1, failures=1, halted=True, reason="halted")  # even a halt does not stop it
    rows = mover(pp, reopen(ckpt), clock, method="unlink-then-link").move(
        ["e1", "e2"], concurrency=2, budget=halted
    )
    assert [r.status for r in rows] == ["succeeded", "succeeded"]
    assert pp.linked_to("e1") == pp.linked_to("e2") == NEW.system_id
    assert pp.posts_of("unlink", "e1") == [OLD.system_id]
    assert pp.posts_of("link", "e1") == [NEW.system_id]


class _Killed(Exception):
    pass


class _KilledAfterUnlink:
    """Passes calls through; the process 'dies' at the first link POST, i.e. right after the unlinks."""

    def __init__(self, pp: FakePowerPlatform) -> None:
        self._pp = pp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pp, name)

    def start_link(self, *a: Any, **kw: Any) -> OperationHandle:
        raise _Killed()


def test_a_failed_link_after_the_unlink_is_retried_and_then_succeeds(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.fault("link", NEW, "fail", "refuse")
    [row] = mover(pp, ckpt, clock, method="unlink-then-link").move(["e1"], concurrency=1)
    assert row.status == "succeeded", row
    assert pp.posts_of("link", "e1") == [NEW.system_id] * 3
    assert pp.linked_to("e1") == NEW.system_id
    assert row.policy_after == NEW.id
    assert min(clock.sleeps) >= 2.0  # every retry waited a poll delay first


def test_a_link_after_the_unlink_failing_every_time_is_linked_back_to_the_old_policy(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.fault("link", NEW, *["fail"] * LINK_ATTEMPTS)
    budget = FailureBudget(0)
    [row] = mover(pp, ckpt, clock, method="unlink-then-link").move(["e1"], concurrency=1, budget=budget)
    assert row.status == "failed"
    assert pp.posts_of("link", "e1") == [NEW.system_id] * LINK_ATTEMPTS + [OLD.system_id]
    assert pp.linked_to("e1") == OLD.system_id
    assert row.policy_after == OLD.id and row.key_managed_by_after == "Customer"
    assert f"link to ep-eu-2 failed {LINK_ATTEMPTS} time(s)" in row.error
    assert "Injected: key unreachable." in row.error
    assert "linked back to the old policy ep-eu" in row.error
    assert budget.failures == 1
    assert reopen(ckpt).environment("e1")["status"] == "failed"


def test_a_failed_re_link_says_loudly_the_environment_is_on_the_microsoft_key_and_a_re_run_fixes_it(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.fault("link", NEW, *["refuse"] * LINK_ATTEMPTS)
    pp.fault("link", OLD, "fail")
    [row] = mover(pp, ckpt, clock, method="unlink-then-link").move(["e1"], concurrency=1)
    assert row.status == "failed"
    assert "THE ENVIRONMENT IS ON THE MICROSOFT-MANAGED KEY" in row.error
    assert "linking back to the old policy failed too" in row.error
    assert row.key_managed_by_after == "Microsoft" and row.policy_after == ""

    [again] = mover(pp, reopen(ckpt), clock, method="unlink-then-link").move(["e1"], concurrency=1)
    assert again.status == "succeeded"
    assert pp.linked_to("e1") == NEW.system_id
    assert again.policy_before == OLD.id  # the facts from before the change are kept


def test_the_re_link_to_the_old_policy_is_resumed_after_a_kill(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", None)
    handle = pp.start_link("e1", OLD.system_id or "")  # the re-link the killed run had posted
    before = {"name": "e1", "policy": OLD.id, "system_id": OLD.system_id, "key_managed_by": "Customer"}
    ckpt.update_environment(
        "e1",
        before=before,
        unlinked=True,
        phase="relink",
        attempts=LINK_ATTEMPTS,
        link_error="the link was refused",
        operation=handle.to_dict(),
        status="in-flight",
    )
    [row] = mover(pp, reopen(ckpt), clock, method="unlink-then-link").move(["e1"], concurrency=1)
    assert row.status == "failed" and "linked back to the old policy ep-eu" in row.error
    assert pp.linked_to("e1") == OLD.system_id
    assert len(pp.posts) == 1


def test_a_re_run_after_a_stored_operation_ended_failed_starts_it_again(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.fault("link", NEW, "fail")
    handle = pp.start_link("e1", NEW.system_id or "")  # posted by a run that was then killed
    ckpt.update_environment("e1", operation=handle.to_dict(), phase="link", status="in-flight")
    clock.now += OPERATION_SECONDS  # it ended Failed while nobody watched
    [row] = mover(pp, reopen(ckpt), clock).move(["e1"], concurrency=1)
    assert row.status == "succeeded"
    assert pp.posts_of("link", "e1") == [NEW.system_id] * 2
    assert row.operation_id != handle.operation_id


def test_a_re_run_after_a_failed_row_starts_the_environment_again(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.fault("link", NEW, "refuse")
    assert mover(pp, ckpt, clock).move(["e1"], concurrency=1)[0].status == "failed"
    assert mover(pp, reopen(ckpt), clock).move(["e1"], concurrency=1)[0].status == "succeeded"
    assert mover(pp, reopen(ckpt), clock).move(["e1"], concurrency=1)[0].status == "skipped-done"
    assert len(pp.posts_of("link", "e1")) == 2


def test_unlink_reverts_to_the_microsoft_key(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.add("e2", None)
    rows = mover(pp, ckpt, clock, target=None, action="unlink").move(["e1", "e2"], concurrency=2)
    assert [r.status for r in rows] == ["succeeded", "already-done"]
    assert pp.posts == [("unlink", "e1", OLD.system_id)]
    assert rows[0].key_managed_by_after == "Microsoft" and rows[0].policy_after == ""
    assert rows[0].policy_before == OLD.id


def test_link_from_the_microsoft_key(pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock) -> None:
    pp.add("e1", None)
    [row] = mover(pp, ckpt, clock, target=OLD).move(["e1"], concurrency=1)
    assert row.status == "succeeded" and row.key_managed_by_before == "Microsoft"
    assert row.policy_after == OLD.id and pp.posts == [("link", "e1", OLD.system_id)]


def test_many_environments_are_polled_with_one_list_per_round(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    ids = [f"e{i}" for i in range(20)]
    for env_id in ids:
        pp.add(env_id, OLD)
    counted = _CountingLists(pp)
    m = mover(pp, ckpt, clock, method="unlink-then-link")
    m.pp = counted  # type: ignore[assignment]
    pp.fault("link", NEW, "fail")
    rows = m.move(ids, concurrency=20)
    assert {r.status for r in rows} == {"succeeded"}
    assert counted.gets + counted.polls <= 8  # the other 19 were only ever seen in the bulk list
    assert all(pp.linked_to(e) == NEW.system_id for e in ids)


class _CountingLists:
    def __init__(self, pp: FakePowerPlatform) -> None:
        self._pp = pp
        self.gets = 0
        self.polls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pp, name)

    def get_environment(self, env_id: str) -> EnvironmentInfo:
        self.gets += 1
        return self._pp.get_environment(env_id)

    def poll(self, handle: OperationHandle) -> OperationStatus:
        self.polls += 1
        return self._pp.poll(handle)


def test_a_halted_budget_still_follows_a_stored_operation_and_says_what_must_finish(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    pp.add("e2", OLD)
    handle = pp.start_link("e1", NEW.system_id or "")
    ckpt.update_environment("e1", operation=handle.to_dict(), phase="link", status="in-flight")
    assert must_finish(ckpt.environment("e1")) and not must_finish(ckpt.environment("e2"))
    assert must_finish({"status": "unlinked", "unlinked": True})
    assert must_finish({"status": "failed", "unlinked": True})  # a failed re-link: still to be linked
    assert not must_finish({"status": "succeeded", "unlinked": True, "operation": {}})
    halted = FailureBudget(1, failures=1, halted=True, reason="halted earlier")
    rows = mover(pp, reopen(ckpt), clock).move(["e1", "e2"], concurrency=2, budget=halted)
    assert [r.status for r in rows] == ["succeeded", "not-started"]
    assert len(pp.posts) == 1


def test_a_dict_row_stored_before_typed_rows_still_resumes_as_skipped_done(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", NEW)
    stored = {"environment_id": "e1", "name": "Sales", "status": "succeeded", "policy_after": NEW.id}
    ckpt.update_environment("e1", status="succeeded", row=stored)
    [row] = mover(pp, reopen(ckpt), clock).move(["e1"], concurrency=1)
    assert (row.status, row.name, row.policy_after, row.key_after) == ("skipped-done", "Sales", NEW.id, "")
    assert pp.posts == []


def test_the_checkpoint_stores_the_row_as_report_columns_and_whether_it_was_read_back(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    pp.add("e1", OLD)
    [row] = mover(pp, ckpt, clock).move(["e1"], concurrency=1)
    assert reopen(ckpt).environment("e1")["row"] == {**row.to_dict(), "read_back": True}
    assert EnvironmentRow.of(reopen(ckpt).environment("e1")["row"]) == row


def test_a_finished_operation_is_replaced_at_once_and_the_next_is_looked_at_when_due(
    pp: FakePowerPlatform, ckpt: CheckpointStore, clock: Clock
) -> None:
    ids = [f"e{i}" for i in range(3)]
    for env_id in ids:
        pp.add(env_id, OLD)
    counted = _CountingLists(pp)
    m = mover(pp, ckpt, clock)
    m.pp = counted  # type: ignore[assignment]
    posted_at: list[float] = []
    start_link = pp.start_link

    def timed_start(env_id: str, system_id: str, *, current: Any = None) -> OperationHandle:
        posted_at.append(clock.now)
        return start_link(env_id, system_id, current=current)

    counted.start_link = timed_start  # type: ignore[attr-defined]
    rows = m.move(ids, concurrency=1)
    assert [r.status for r in rows] == ["succeeded"] * 3
    # One at a time, each started the moment the one before was seen done (10 s operations; checks due
    # within 5 % of an operation share a round).
    assert posted_at[:2] == [1000.0, 1010.0] and 1020.0 <= posted_at[2] <= 1020.5
    # After the first read of all three, the first is looked at by Retry-After (5 s, 10 s); the others
    # only when due (the 10 s the first took), once each.
    assert counted.gets == 3 + 2 + 1 + 1
    assert counted.polls == 0
