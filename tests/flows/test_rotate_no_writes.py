"""Nothing is written before approval: a rejected, expired or dry-run rotation leaves the tenant as it was.

Both modes, all three endings: no PUT/POST/PATCH/DELETE reached ARM, Key Vault or BAP, no key or key version and
no policy was created, and the approval form (or the dry-run plan) lists every write the run would have made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flows.rotate import rotate
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows import rotation_support
from tests.flows.rotation_support import OLD_KEY, policy_id
from tests.flows.test_onboard import writes_since

onboarded_sim = rotation_support.onboarded_sim
rotation_env = rotation_support.rotation_env

REJECT = {"approver": "bob", "decision": "reject", "comment": "not during quarter close"}
MODES = {
    "key-version": {},
    "policy-swap": {"new_policy_name": "ep-cmk-eu-2", "new_key_name": "pp-cmk-key-2"},
}
GATES = {"key-version": "rotate-key-version", "policy-swap": "rotate-swap"}


def tenant(sim: RunningSimulator) -> dict[str, Any]:
    """The keys (with their versions) and the enterprise policies the simulator holds."""
    state = sim.control.state()
    keys = state["keyvault"]["kv-cmk-demo"]["keys"]
    return {
        "keys": {name: [v["version"] for v in key["versions"]] for name, key in keys.items()},
        "policies": sorted(p["name"] for p in state["arm"]["enterprise_policies"]),
    }


def planned_writes_listed(text: str, mode: str) -> None:
    """The plan text names every write of its mode."""
    assert "Planned writes" in text and "Nothing has been written yet" in text
    if mode == "key-version":
        assert "create key version `https://" in text and f"/keys/{OLD_KEY}`" in text
        return
    assert "create key `" in text and "/keys/pp-cmk-key-2`" in text
    assert "deploy policy `" in text and "enterprisePolicies/ep-cmk-eu-2`" in text
    assert "grant key access `" in text and "grant Reader `" in text
    assert all(f"link `{env_id}`" in text for env_id in EUROPE_ELIGIBLE)


def approval_form(state: Any, mode: str) -> str:
    """The description the paused run showed the approver."""
    from prefect.input.actions import read_flow_run_input

    return read_flow_run_input(f"paused-{GATES[mode]}-1-description", state.state_details.flow_run_id)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("ending", ["rejected", "expired", "dry-run"])
def test_nothing_is_written_before_approval(
    rotation_env: RunningSimulator, approver: Any, mode: str, ending: str
) -> None:
    from blocks.approval import ApprovalSettings

    change_id = f"CHG-NW-{mode}-{ending}".upper()
    params: dict[str, Any] = {
        "change_id": change_id,
        "requested_by": "alice",
        "policy_id": policy_id(rotation_env),
        "mode": mode,
        **MODES[mode],
    }
    if ending == "rejected":
        approver("rotate", [REJECT])
    elif ending == "expired":
        ApprovalSettings(timeout_seconds=5, poll_interval_seconds=1).save("short-approvals", overwrite=True)
        params["approval_settings"] = "short-approvals"
    else:
        params["dry_run"] = True
    before = tenant(rotation_env)
    since = rotation_env.control.last_seq()

    state = rotate(**params, return_state=True)

    if ending == "rejected":
        assert state.is_cancelled(), state.message
        assert "not during quarter close" in state.message
    elif ending == "expired":
        assert state.is_failed(), state.message
    else:
        assert state.is_completed(), state.message
        assert state.result()["dry_run"] is True
    assert writes_since(rotation_env, since) == []
    assert tenant(rotation_env) == before  # no key, no key version, no policy
    if ending == "dry-run":
        plan = (Path(os.environ["CMK_REPORTS_DIR"]) / f"rotate-{change_id}-summary.md").read_text()
        planned_writes_listed(plan, mode)
    else:
        planned_writes_listed(approval_form(state, mode), mode)
        summary = (Path(os.environ["CMK_REPORTS_DIR"]) / f"rotate-{change_id}-summary.md").read_text()
        assert ending in summary


def test_no_environment_moves_when_the_new_policy_cannot_get_key_access(
    rotation_env: RunningSimulator, approver: Any
) -> None:
    rotation_env.control.add_fault(
        service="arm",
        method="PUT",
        path="/accessPolicies/",
        status=403,
        code="AuthorizationFailed",
        message="Injected: the Azure identity may not change access policies.",
    )
    approver("rotate", [{"approver": "carol", "decision": "approve", "change_ticket": "CHG0042"}])
    since = rotation_env.control.last_seq()
    state = rotate(
        change_id="CHG-NW-NO-ACCESS",
        requested_by="alice",
        policy_id=policy_id(rotation_env),
        mode="policy-swap",
        **MODES["policy-swap"],
        return_state=True,
    )
    assert state.is_failed()
    writes = writes_since(rotation_env, since)
    assert writes and not [w for w in writes if w["service"] == "bap"]  # key and policy made, nothing moved
    assert "ep-cmk-eu-2" in tenant(rotation_env)["policies"]
