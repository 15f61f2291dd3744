"""The rotate flow under the Prefect test server, against the onboarded demo tenant over HTTPS."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flows.rotate import rotate
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows import rotation_support
from tests.flows.rotation_support import APPROVE, lifecycle_posts, linked_system_ids, policy_id, system_id

onboarded_sim = rotation_support.onboarded_sim
rotation_env = rotation_support.rotation_env


def swap_params(sim: RunningSimulator, change_id: str, **extra: Any) -> dict[str, Any]:
    """policy-swap parameters for the onboarded tenant."""
    return {
        "change_id": change_id,
        "requested_by": "alice",
        "policy_id": policy_id(sim),
        "mode": "policy-swap",
        "new_policy_name": "ep-cmk-eu-2",
        "new_key_name": "pp-cmk-key-2",
        **extra,
    }


def test_policy_swap_moves_every_environment_of_the_old_policy(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    approver("rotate", [APPROVE])
    state = rotate(**swap_params(rotation_env, "CHG-SWAP"), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    new_sid = system_id(rotation_env, "ep-cmk-eu-2")
    assert linked_system_ids(rotation_env) == {env_id: new_sid for env_id in EUROPE_ELIGIBLE}
    assert lifecycle_posts(rotation_env, "link") == {env_id: 1 for env_id in EUROPE_ELIGIBLE}
    assert lifecycle_posts(rotation_env, "unlink") == {}
    rows = {r["environment_id"]: r for r in result["rows"]}
    assert {r["status"] for r in rows.values()} == {"succeeded"}
    for row in rows.values():
        assert row["policy_before"].lower() == policy_id(rotation_env).lower()
        assert row["policy_after"].lower() == policy_id(rotation_env, "ep-cmk-eu-2").lower()
        assert row["key_before"] == "kv-cmk-demo/pp-cmk-key"
        assert row["key_after"] == "kv-cmk-demo/pp-cmk-key-2"
    register = json.loads((Path(os.environ["CMK_STATE_DIR"]) / "policy-retirements.json").read_text())
    [entry] = register["policies"]
    assert entry["policy_id"].lower() == policy_id(rotation_env).lower()
    assert entry["retire_after"] == result["retire_after"]
