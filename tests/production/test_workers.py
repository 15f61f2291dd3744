"""Two process workers on one pool, a Prefect server on PostgreSQL: a killed worker and overlapping changes.

Proved from the outside: the simulator's request log (one accepted link or unlink per environment), the state the
tenant ends in, and the runs' own report rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.stack import free_port
from flows.approval import answer_approval, find_paused_run
from simulator.scenarios.demo import EUROPE_ELIGIBLE, SUBSCRIPTION_ID
from tests.postgres import running_postgres
from tests.production.rig import RigConfig, WorkerRig

VAULT_ID = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
)
POLICY_ID = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-workers"
LINK_SECONDS = 6


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerRig]:
    """PostgreSQL, the server on it, the simulator, prefect.yaml deployed, two workers."""
    base = tmp_path_factory.mktemp("rig")
    with running_postgres() as pg:
        prefect_db = pg.new_database().replace("postgresql+psycopg", "postgresql+asyncpg")
        running = WorkerRig(
            RigConfig(
                port=free_port(),
                state_dir=base / "state",
                reports_dir=base / "reports",
                sim_settings={
                    "link_seconds": LINK_SECONDS,
                    "unlink_seconds": LINK_SECONDS,
                    "provider_registration_seconds": 1,
                },
                startup_timeout=180,
                prefect_database_url=prefect_db,
                workers=2,
                deploy=("encrypt-environments", "revert-to-microsoft-key"),
            )
        )
        running.start()
        print(f"rig built: {running.timings}")
        try:
            with temporary_settings(updates={PREFECT_API_URL: running.config.api_url}):
                yield running
        finally:
            running.stop()


def wait_for(what: str, check: Any, timeout: float = 120, every: float = 0.5) -> Any:
    """check()'s first truthy value, polled; an AssertionError naming what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(every)


def final_run(flow_run_id: UUID, timeout: float = 240) -> Any:
    """The flow run once it is in a final state."""
    with get_client(sync_client=True) as client:
        return wait_for(
            f"flow run {flow_run_id} ending",
            lambda: (r := client.read_flow_run(flow_run_id)).state and r.state.is_final() and r,
            timeout,
        )


def approve(flow_run_id: UUID, ticket: str) -> None:
    """Answer the run's approval as carol once it pauses."""
    wait_for(f"{flow_run_id} pausing", lambda: find_paused_run(flow_run_id), timeout=180)
    answer_approval(flow_run_id, approver="carol", decision="approve", change_ticket=ticket)


def accepted_posts(rig: WorkerRig, suffix: str, since: int = 0) -> dict[str, int]:
    """Accepted (2xx) link or unlink POSTs per environment in the simulator's request log."""
    assert rig.sim is not None
    counts: dict[str, int] = {}
    for r in rig.sim.control.requests(since=since, service="bap", method="POST"):
        if r["path"].lower().endswith(suffix) and 200 <= int(r.get("status", 0)) < 300:
            counts[r["target"]] = counts.get(r["target"], 0) + 1
    return counts


def onboard_parameters(change_id: str) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "requested_by": "alice",
        "vault_id": VAULT_ID,
        "policy_name": "ep-workers",
        "resource_group": "rg-cmk",
        "location": "europe",
        "concurrency": 2,
        "canary_size": 1,
    }


def test_a_worker_killed_mid_wave_and_the_change_re_run_on_the_other_posts_no_link_twice(
    rig: WorkerRig,
) -> None:
    assert rig.sim is not None
    mark = len(rig.sim.control.requests())
    first = run_deployment(
        "onboard/encrypt-environments", parameters=onboard_parameters("CHG-KILL"), timeout=0
    )
    approve(first.id, "CHG-KILL")
    wait_for("two links accepted", lambda: sum(accepted_posts(rig, "/link", mark).values()) >= 2, timeout=180)
    holder = wait_for("the worker running the change", lambda: rig.worker_of(first.id), timeout=30)
    killed = rig.kill_worker(holder)
    in_flight = accepted_posts(rig, "/link", mark)
    assert killed >= 2 and len(in_flight) < len(EUROPE_ELIGIBLE)

    again = run_deployment(
        "onboard/encrypt-environments", parameters=onboard_parameters("CHG-KILL"), timeout=0
    )
    done = final_run(again.id)
    assert done.state.is_completed(), done.state.message
    survivor = next(name for name in rig.workers if name != holder)
    assert rig.workers[survivor].poll() is None

    posts = accepted_posts(rig, "/link", mark)
    assert posts == {env: 1 for env in EUROPE_ELIGIBLE}
    envs = rig.sim.control.state()["bap"]["environments"]
    assert sorted(e for e, v in envs.items() if v["encryption"] == "cmk") == sorted(EUROPE_ELIGIBLE)


def environment_rows(flow_run_id: UUID, key: str) -> list[dict[str, Any]]:
    """The rows of the run's per-environment table artifact."""
    import json

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    table = next(a for a in found if a.key == key)
    return json.loads(table.data) if isinstance(table.data, str) else table.data


def test_two_overlapping_changes_on_two_workers_never_move_one_environment_twice(rig: WorkerRig) -> None:
    assert rig.sim is not None
    linked = sorted(EUROPE_ELIGIBLE)
    envs = rig.sim.control.state()["bap"]["environments"]
    assert all(envs[e]["encryption"] == "cmk" for e in linked), "runs after the kill test"
    mark = len(rig.sim.control.requests())
    first, second = linked[:3], linked[1:]
    runs = {}
    for change_id, chosen in (("CHG-REV-1", first), ("CHG-REV-2", second)):
        parameters = {
            "change_id": change_id,
            "requested_by": "alice",
            "environments": chosen,
            "policy_id": POLICY_ID,
            "concurrency": 3,
            "canary_size": 1,
            "failure_threshold": 3,
        }
        runs[change_id] = run_deployment("revert/revert-to-microsoft-key", parameters=parameters, timeout=0)
    for change_id, run in runs.items():
        approve(run.id, change_id)
    for run in runs.values():
        done = final_run(run.id)
        assert done.state.is_final()

    assert accepted_posts(rig, "/unlink", mark) == {env: 1 for env in linked}
    envs = rig.sim.control.state()["bap"]["environments"]
    assert all(envs[e]["encryption"] != "cmk" for e in linked)
    rows = {
        cid: {r["environment_id"]: r for r in environment_rows(run.id, "revert-environments")}
        for cid, run in runs.items()
    }
    for env in set(first) & set(second):
        statuses = sorted(rows[cid][env]["status"] for cid in runs)
        assert "succeeded" in statuses and statuses.count("succeeded") == 1, (env, statuses)
