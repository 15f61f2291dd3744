"""Rotation gives the new key version (key-version mode) or the new key (policy-swap) an expiry and rotation policy."""

from __future__ import annotations

from typing import Any

from flows.rotate import rotate
from simulator.testing import RunningSimulator
from tests.flows import rotation_support
from tests.flows.rotation_support import APPROVE, policy_id

onboarded_sim = rotation_support.onboarded_sim
rotation_env = rotation_support.rotation_env
DAY = 86400


def sim_key(sim: RunningSimulator, name: str) -> dict[str, Any]:
    """A key as the simulator holds it."""
    vaults = sim.control.state()["keyvault"]
    return next(v["keys"][name] for v in vaults.values() if name in v["keys"])


def actions(key: dict[str, Any]) -> dict[str, Any]:
    policy = key["rotation_policy"] or {}
    return {a["action"]["type"]: a["trigger"] for a in policy.get("lifetimeActions", [])}


def test_key_version_rotation_sets_expiry_and_rotation_policy(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    approver("rotate", [APPROVE])
    state = rotate(
        policy_id=policy_id(rotation_env),
        change_id="CHG-KV-LIFE",
        requested_by="alice",
        key_expires_in="P1Y",
        key_rotate_after="P9M",
        return_state=True,
    )
    assert state.is_completed(), state.message
    key = sim_key(rotation_env, "pp-cmk-key")
    newest = key["versions"][-1]
    assert newest["version"] == state.result()["new_version"]
    assert 364 * DAY <= newest["exp"] - newest["created"] <= 366 * DAY
    assert key["rotation_policy"]["attributes"]["expiryTime"] == "P1Y"
    assert actions(key) == {"Rotate": {"timeAfterCreate": "P9M"}, "Notify": {"timeBeforeExpiry": "P30D"}}


def test_an_empty_expiry_leaves_the_key_as_it_is(rotation_env: RunningSimulator, approver: Any) -> None:
    approver("rotate", [APPROVE])
    state = rotate(
        policy_id=policy_id(rotation_env),
        change_id="CHG-KV-KEEP",
        requested_by="alice",
        key_expires_in="",
        key_rotate_after="",
        key_notify_before_expiry="",
        return_state=True,
    )
    assert state.is_completed(), state.message
    key = sim_key(rotation_env, "pp-cmk-key")
    assert key["versions"][-1]["exp"] is None and key["rotation_policy"] is None


def test_policy_swap_gives_the_new_key_the_default_lifetime(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    approver("rotate", [APPROVE])
    state = rotate(
        policy_id=policy_id(rotation_env),
        change_id="CHG-SWAP-LIFE",
        requested_by="alice",
        mode="policy-swap",
        new_policy_name="ep-cmk-eu-life",
        new_key_name="pp-cmk-key-life",
        return_state=True,
    )
    assert state.is_completed(), state.message
    key = sim_key(rotation_env, "pp-cmk-key-life")
    version = key["versions"][-1]
    assert 730 * DAY <= version["exp"] - version["created"] <= 731 * DAY
    assert actions(key) == {"Rotate": {"timeAfterCreate": "P18M"}, "Notify": {"timeBeforeExpiry": "P30D"}}


def test_a_bad_duration_is_refused_before_any_request(rotation_env: RunningSimulator) -> None:
    since = rotation_env.control.last_seq()
    state = rotate(
        policy_id=policy_id(rotation_env),
        change_id="CHG-KV-BAD",
        requested_by="alice",
        key_notify_before_expiry="30 days",
        return_state=True,
    )
    assert state.is_failed()
    assert "key_notify_before_expiry '30 days' is not an ISO 8601 duration" in state.message
    assert rotation_env.control.requests(since=since) == []
