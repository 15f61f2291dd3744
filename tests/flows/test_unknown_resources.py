"""A well-formed id of a vault or policy that does not exist is a clear refusal before any write, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.lock import lock
from flows.migrate_byok import migrate_byok
from flows.onboard import onboard
from flows.revert import revert
from flows.rotate import rotate
from simulator.testing import RunningSimulator
from tests.flows.linked_scenario import RG, prepare_linked_env, start_linked_sim, writes_since

linked_sim = pytest.fixture(scope="module")(start_linked_sim)
NO_POLICY = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-does-not-exist"
NO_VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-does-not-exist"


@pytest.fixture
def linked(prefect_server: None, linked_sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    """The linked scenario, reset, with the default blocks pointing at it."""
    yield from prepare_linked_env(linked_sim, tmp_path)


CASES: list[tuple[str, Any, dict[str, Any], str]] = [
    (
        "onboard-vault",
        onboard,
        {"vault_id": NO_VAULT, "policy_name": "ep-new", "resource_group": "rg-cmk", "location": "europe"},
        "kv-does-not-exist",
    ),
    ("rotate-policy", rotate, {"policy_id": NO_POLICY}, "ep-does-not-exist"),
    ("rotate-swap-policy", rotate, {"policy_id": NO_POLICY, "mode": "policy-swap"}, "ep-does-not-exist"),
    ("migrate-policy", migrate_byok, {"policy_id": NO_POLICY}, "ep-does-not-exist"),
    ("revert-policy", revert, {"policy_id": NO_POLICY}, "ep-does-not-exist"),
    ("lock-policy", lock, {"policy_id": NO_POLICY}, "ep-does-not-exist"),
]


@pytest.mark.parametrize(("name", "flow", "extra", "named"), CASES, ids=[c[0] for c in CASES])
def test_an_unknown_vault_or_policy_is_refused_clearly_and_nothing_is_written(
    linked: RunningSimulator, name: str, flow: Any, extra: dict[str, Any], named: str
) -> None:
    since = linked.control.last_seq()
    state = flow(change_id=f"CHG-{name}", requested_by="alice", **extra, return_state=True)
    assert state.is_failed(), state.message
    message = state.message or ""
    assert named in message, message
    assert "not exist" in message or "NOT_FOUND" in message, message
    assert "Traceback" not in message and "encountered an exception" not in message, message
    assert writes_since(linked, since) == []
