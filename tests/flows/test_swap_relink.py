"""Unlink-then-link whose link to the new policy keeps failing: the environment is linked back to the old."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cmk.moves.engine import LINK_ATTEMPTS
from flows.rotate import rotate
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows import rotation_support
from tests.flows.rotation_support import APPROVE, lifecycle_posts, linked_system_ids, policy_id, system_id

onboarded_sim = rotation_support.onboarded_sim
rotation_env = rotation_support.rotation_env


def link_starts(env_id: str) -> list[tuple[str, str]]:
    """(outcome, systemId lower-case) of every link POST the journal recorded for env_id, in order."""
    journal = Path(os.environ["CMK_STATE_DIR"]) / "journal.jsonl"
    out = []
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        if entry["action"] == "bap.link.start" and entry["target"] == env_id:
            sid = (entry.get("after") or {}).get("system_id") or (entry.get("detail") or {}).get("system_id")
            out.append((entry["outcome"], (sid or "").lower()))
    return out


@pytest.mark.parametrize("fanout", ["per-environment", "per-wave"])
def test_a_link_to_the_new_policy_failing_every_time_is_linked_back_to_the_old_policy(
    rotation_env: RunningSimulator, approver: Any, fanout: str
) -> None:
    victim = EUROPE_ELIGIBLE[1]
    # A fault rule matches the path, not the body: it answers exactly the LINK_ATTEMPTS link POSTs the mover
    # makes towards the new policy, so every link to the new policy fails; the journal below proves which
    # systemId each POST carried.
    rotation_env.control.add_fault(
        service="bap",
        method="POST",
        path=f"{victim}/enterprisePolicies/Encryption/link",
        status=400,
        code="EnvironmentValidationFailed",
        message="Injected: storage account unavailable.",
        count=LINK_ATTEMPTS,
    )
    approver("rotate", [APPROVE])
    state = rotate(
        change_id=f"CHG-RELINK-{fanout}",
        requested_by="alice",
        policy_id=policy_id(rotation_env),
        mode="policy-swap",
        new_policy_name="ep-cmk-eu-2",
        new_key_name="pp-cmk-key-2",
        swap_method="unlink-then-link",
        fanout=fanout,
        failure_threshold=0,
        return_state=True,
    )
    assert not state.is_completed()  # one environment failed
    old_sid, new_sid = system_id(rotation_env, "ep-cmk-eu"), system_id(rotation_env, "ep-cmk-eu-2")
    others = [e for e in EUROPE_ELIGIBLE if e != victim]
    assert linked_system_ids(rotation_env) == {victim: old_sid, **{e: new_sid for e in others}}
    assert lifecycle_posts(rotation_env, "unlink") == {e: 1 for e in EUROPE_ELIGIBLE}
    assert lifecycle_posts(rotation_env, "link") == {victim: LINK_ATTEMPTS + 1, **{e: 1 for e in others}}
    assert link_starts(victim) == [("failed", new_sid)] * LINK_ATTEMPTS + [("succeeded", old_sid)]

    rows = {r["environment_id"]: r for r in state.result(raise_on_failure=False)["rows"]}
    row = rows[victim]
    assert row["status"] == "failed"
    assert f"link to ep-cmk-eu-2 failed {LINK_ATTEMPTS} time(s)" in row["error"]
    assert "storage account unavailable" in row["error"]
    assert "linked back to the old policy ep-cmk-eu" in row["error"]
    assert row["policy_after"].lower() == policy_id(rotation_env).lower()
    assert row["key_managed_by_after"] == "Customer"
    assert row["key_after"] == "kv-cmk-demo/pp-cmk-key"  # the old key, which it is on again
    assert {rows[e]["status"] for e in others} == {"succeeded"}
