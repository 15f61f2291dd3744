"""Onboarding gives the key it creates an expiry and a rotation policy, and the inventory then finds no risk in it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flows.inventory import inventory
from flows.onboard import onboard
from simulator.scenarios.demo import EUROPE_ELIGIBLE
from simulator.testing import RunningSimulator
from tests.flows.test_onboard import APPROVE, params, writes_since

KEY = "pp-cmk-key"


def demo_key(sim: RunningSimulator) -> dict[str, Any]:
    """The onboarded key as the simulator holds it."""
    vaults = sim.control.state()["keyvault"]
    return next(v["keys"][KEY] for v in vaults.values() if KEY in v["keys"])


def test_the_new_key_expires_rotates_and_is_no_inventory_risk(
    flow_env: RunningSimulator, approver: Any
) -> None:
    approver("onboard", [APPROVE])
    state = onboard(**params(flow_env, "CHG-LIFE", environments=[EUROPE_ELIGIBLE[0]]), return_state=True)
    assert state.is_completed(), state.message
    key = demo_key(flow_env)
    version = key["versions"][-1]
    years = (
        datetime.fromtimestamp(version["exp"], UTC) - datetime.fromtimestamp(version["created"], UTC)
    ).days
    assert 730 <= years <= 731
    policy = key["rotation_policy"]
    assert policy["attributes"]["expiryTime"] == "P2Y"
    assert {a["action"]["type"]: a["trigger"] for a in policy["lifetimeActions"]} == {
        "Rotate": {"timeAfterCreate": "P18M"},
        "Notify": {"timeBeforeExpiry": "P30D"},
    }

    report = inventory(return_state=True)
    assert report.is_completed(), report.message
    about_key = [r for r in report.result()["risks"] if r["target"].endswith(f"/keys/{KEY}")]
    assert about_key == []


def test_without_a_rotate_action_the_inventory_still_says_so(
    flow_env: RunningSimulator, approver: Any
) -> None:
    approver("onboard", [APPROVE])
    state = onboard(
        **params(flow_env, "CHG-NOROT", environments=[EUROPE_ELIGIBLE[0]], key_rotate_after=""),
        return_state=True,
    )
    assert state.is_completed(), state.message
    report = inventory(return_state=True)
    codes = {r["code"] for r in report.result()["risks"] if r["target"].endswith(f"/keys/{KEY}")}
    assert codes == {"key-no-rotation-policy"}


def test_an_invalid_duration_is_refused_before_any_request(flow_env: RunningSimulator) -> None:
    since = flow_env.control.last_seq()
    state = onboard(**params(flow_env, "CHG-BADDUR", key_expires_in="two years"), return_state=True)
    assert state.is_failed()
    assert "key_expires_in 'two years' is not an ISO 8601 duration" in state.message
    assert flow_env.control.requests(since=since) == []
    assert writes_since(flow_env, since) == []


MARKETING = "c0de0e4a-7c2b-4e5f-9a10-0000000e0006"  # a non-managed europe sandbox


def test_onboarding_makes_an_environment_managed_after_approval_then_links_it(
    flow_env: RunningSimulator, approver: Any
) -> None:
    envs = flow_env.control.state()["bap"]["environments"]
    assert envs[MARKETING]["managed"] is False
    dry = onboard(
        **params(flow_env, "CHG-MGD-DRY", environments=[MARKETING], make_managed=[MARKETING], dry_run=True),
        return_state=True,
    )
    assert dry.is_completed(), dry.message
    assert any(w.startswith(f"enable Managed Environment `{MARKETING}`") for w in dry.result()["writes"])
    assert flow_env.control.state()["bap"]["environments"][MARKETING]["managed"] is False

    approver("onboard", [APPROVE])
    since = flow_env.control.last_seq()
    state = onboard(
        **params(flow_env, "CHG-MGD", environments=[MARKETING], make_managed=[MARKETING]), return_state=True
    )
    assert state.is_completed(), state.message
    env = flow_env.control.state()["bap"]["environments"][MARKETING]
    assert env["managed"] is True and env["encryption"] == "cmk"
    posts = [r["path"] for r in writes_since(flow_env, since) if r["service"] == "bap"]
    governance = next(i for i, p in enumerate(posts) if p.endswith("/governanceConfiguration"))
    link = next(i for i, p in enumerate(posts) if p.endswith("/link"))
    assert governance < link
