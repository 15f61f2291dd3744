"""Flow runs through the Prefect API: start a remediation's change run, find runs in flight, find paused runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from filelock import FileLock
from prefect import get_client, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from tasks.context import state_dir

IN_FLIGHT = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]
REMINDERS_FILE = "approval-reminders.json"


def finding_tag(key: str) -> str:
    """The tag every remediation run of one finding carries."""
    return f"cmk-finding:{key}"


@task(name="runs-in-flight", cache_policy=NO_CACHE)
def runs_in_flight(tag: str) -> list[dict[str, str]]:
    """Flow runs with this tag that are scheduled, pending, running or paused (waiting for approval)."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[tag]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=IN_FLIGHT)),
            )
        )
    return [{"id": str(r.id), "name": r.name, "state": r.state.name if r.state else ""} for r in runs]


@task(name="start-run", cache_policy=NO_CACHE)
def start_run(
    deployment: str, parameters: dict[str, Any], tags: list[str], idempotency_key: str
) -> dict[str, str]:
    """Create the change run (it starts like a manual run and pauses at its approval); returns id and name."""
    run = run_deployment(
        deployment,
        parameters=parameters,
        tags=tags,
        idempotency_key=idempotency_key,
        timeout=0,
        as_subflow=False,
    )
    return {"id": str(run.id), "name": run.name}


@task(name="paused-runs", cache_policy=NO_CACHE)
def paused_runs() -> list[dict[str, Any]]:
    """Every paused flow run with its pause's expiry (None when the pause never expires)."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            )
        )
        flows = {r.flow_id: client.read_flow(r.flow_id).name for r in runs}
    out = []
    for r in runs:
        assert r.state is not None
        timeout = r.state.state_details.pause_timeout
        out.append(
            {
                "id": str(r.id),
                "name": r.name,
                "flow": flows[r.flow_id],
                "pause_id": str(r.state.id),
                "change_id": str((r.parameters or {}).get("change_id") or ""),
                "expires_at": timeout.astimezone(UTC).isoformat(timespec="seconds") if timeout else None,
            }
        )
    return out


@task(name="not-reminded-yet", cache_policy=NO_CACHE)
def not_reminded_yet(pause_ids: list[str]) -> list[str]:
    """The pauses not reminded of before, and remember them all (a shared file under CMK_STATE_DIR)."""
    path = state_dir() / REMINDERS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        seen: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        new = [p for p in pause_ids if p not in seen]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        seen.update(dict.fromkeys(new, now))
        path.write_text(json.dumps(seen, indent=1, sort_keys=True))
    return new
