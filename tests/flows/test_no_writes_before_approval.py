"""Nothing is written before approval: lock, unlock, retire, migrate_byok and revert after a rejection, an expired
approval and a dry run make no PUT/POST/PATCH/DELETE to ARM, Key Vault or BAP and leave the tenant as it was; and
malformed parameters are refused before any request at all."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cmk.domain import grace
from cmk.state.key_retirements import RETIREMENTS_FILE, Retirement, RetirementRegister
from cmk.state.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from flows.lock import lock
from flows.migrate_byok import migrate_byok
from flows.retire import retire
from flows.revert import revert
from flows.unlock import unlock
from simulator.testing import RunningSimulator
from tests.flows.linked_scenario import (
    DEMO_VAULT,
    EU_POLICY,
    EU_POLICY_ENVS,
    LEGACY_ERP,
    RETIRED_POLICY,
    prepare_linked_env,
    start_linked_sim,
    writes_since,
)

linked_sim = pytest.fixture(scope="module")(start_linked_sim)
SHORT_APPROVALS = "short-approvals"
REJECT = {"approver": "erin", "decision": "reject", "comment": "not now"}
APPROVE = {"approver": "carol", "decision": "approve", "change_ticket": "CHG0101"}


@pytest.fixture
def linked(prefect_server: None, linked_sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    """The linked scenario, reset, with fast operations, the default blocks and a 5-second approval block."""
    from blocks.approval import ApprovalSettings

    for ready in prepare_linked_env(linked_sim, tmp_path):
        ApprovalSettings(timeout_seconds=5, poll_interval_seconds=1).save(SHORT_APPROVALS, overwrite=True)
        yield ready


def tenant(sim: RunningSimulator) -> dict[str, Any]:
    """What a change could alter: environments, policies, access-policy entries, role assignments, key versions."""
    state = sim.control.state()
    arm = state["arm"]
    return {
        "environments": {
            k: (e["runtime"], e["encryption"], e["policy_system_id"])
            for k, e in state["bap"]["environments"].items()
        },
        "policies": sorted(p["id"] for p in arm["enterprise_policies"]),
        "access": {
            v["name"]: sorted(json.dumps(e, sort_keys=True) for e in v["properties"]["accessPolicies"])
            for v in arm["vaults"]
        },
        "roles": sorted(a["id"] for a in arm["role_assignments"]),
        "keys": {
            (vault, name): {v["version"]: v["enabled"] for v in key["versions"]}
            for vault, store in state["keyvault"].items()
            for name, key in store["keys"].items()
        },
    }


# -- per-flow setup: what must exist so that an approved run would write -------------------------------------
def lock_case(sim: RunningSimulator, approver: Any) -> dict[str, Any]:
    return {"requested_by": "alice", "policy_id": EU_POLICY}


def unlock_case(sim: RunningSimulator, approver: Any) -> dict[str, Any]:
    """A real lock first (so the unlock has access to restore and environments to re-enable)."""
    confirm = {**APPROVE, "typed_confirmation": "ep-cmk-eu"}
    approver("lock", [confirm, {**confirm, "approver": "dave"}])
    state = lock(
        change_id="CHG-SETUP-LOCK",
        requested_by="alice",
        policy_id=EU_POLICY,
        lock_timeout_seconds=60,
        return_state=True,
    )
    assert state.is_completed(), state.message
    offline = {k for k, v in tenant(sim)["environments"].items() if v[0] == "Disabled"}
    assert offline == set(EU_POLICY_ENVS)
    return {"requested_by": "alice", "lock_change_id": "CHG-SETUP-LOCK"}


def retire_case(sim: RunningSimulator, approver: Any) -> dict[str, Any]:
    """Registers as a rotation leaves them, past their grace: an old key version and an unused old policy."""
    state = sim.control.state()
    vault = next(v for v in state["arm"]["vaults"] if v["name"] == "kv-cmk-demo")
    key = state["keyvault"]["kv-cmk-demo"]["keys"]["pp-old-key"]
    old_version = next(v["version"] for v in key["versions"] if v["version"] != key["latest"])
    policies = {p["id"].lower(): p for p in state["arm"]["enterprise_policies"]}
    old, new = policies[RETIRED_POLICY.lower()], policies[EU_POLICY.lower()]
    past = grace.utc_now() - timedelta(days=1)
    states = Path(os.environ["CMK_STATE_DIR"])
    RetirementRegister(states / RETIREMENTS_FILE).record(
        Retirement(
            vault["properties"]["vaultUri"].rstrip("/"), "pp-old-key", old_version, past, "CHG-ROT-OLD"
        )
    )
    PolicyRetirementRegister(states / POLICY_RETIREMENTS_FILE).record(
        PolicyRetirement(
            change_id="CHG-ROT-OLD",
            policy_id=RETIRED_POLICY,
            system_id=old["properties"]["systemId"],
            principal_id=old["identity"]["principalId"],
            vault_id=DEMO_VAULT,
            key_name="pp-old-key",
            new_policy_id=EU_POLICY,
            new_principal_id=new["identity"]["principalId"],
            new_vault_id=DEMO_VAULT,
            retire_after=past,
            recorded_at=past - timedelta(days=30),
        )
    )
    return {"requested_by": "alice"}


def migrate_case(sim: RunningSimulator, approver: Any) -> dict[str, Any]:
    return {"requested_by": "alice", "policy_id": EU_POLICY}


def revert_case(sim: RunningSimulator, approver: Any) -> dict[str, Any]:
    return {"requested_by": "alice", "policy_id": EU_POLICY}


@dataclass(frozen=True)
class Case:
    name: str
    flow: Any
    setup: Callable[[RunningSimulator, Any], dict[str, Any]]
    planned_writes: int  # how many writes the dry run's plan lists (an approved run would make them)


CASES = [
    Case("lock", lock, lock_case, 1),  # remove the policy identity's access-policy entry
    Case("unlock", unlock, unlock_case, 1 + len(EU_POLICY_ENVS)),  # restore the entry, re-enable each one
    Case("retire", retire, retire_case, 3),  # disable the version, delete the policy, remove its access
    Case("migrate_byok", migrate_byok, migrate_case, 1),  # link LEGACY_ERP
    Case("revert", revert, revert_case, len(EU_POLICY_ENVS)),  # unlink each one
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rejected_expired_and_dry_runs_write_nothing(
    linked: RunningSimulator, approver: Any, case: Case
) -> None:
    args = case.setup(linked, approver)
    before = tenant(linked)
    since = linked.control.last_seq()

    expired = case.flow(
        change_id=f"CHG-{case.name}-EXPIRE", approval_settings=SHORT_APPROVALS, **args, return_state=True
    )
    assert expired.is_failed(), f"{case.name} expired: {expired.type} {expired.message}"

    gate = approver(case.name, [REJECT])
    rejected = case.flow(change_id=f"CHG-{case.name}-REJECT", **args, return_state=True)
    assert rejected.is_cancelled(), f"{case.name} rejected: {rejected.type} {rejected.message}"
    assert gate.given == [REJECT]

    dry = case.flow(change_id=f"CHG-{case.name}-DRY", dry_run=True, **args, return_state=True)
    assert dry.is_completed(), f"{case.name} dry run: {dry.message}"
    result = dry.result()
    assert result["dry_run"] is True
    if "writes" in result:
        assert len(result["writes"]) == case.planned_writes, result["writes"]
    else:
        assert len(result["planned"]) == case.planned_writes, result["planned"]

    assert writes_since(linked, since) == [], f"{case.name} wrote before approval"
    assert tenant(linked) == before
    journal = Path(os.environ["CMK_STATE_DIR"]) / "journal.jsonl"
    actions = [json.loads(line) for line in journal.read_text().splitlines()]
    ours = {e["action"] for e in actions if e["change_id"].startswith(f"CHG-{case.name}-")}
    assert ours <= {"approval.expired", "approval.reject"}, ours
    assert {"approval.expired", "approval.reject"} <= ours


MALFORMED = [
    ("lock", lock, {"policy_id": "/subscriptions/x/enterprisePolicies/ep"}, "policy_id"),
    ("lock", lock, {"policy_id": EU_POLICY, "lock_timeout_seconds": 0}, "lock_timeout_seconds"),
    ("lock", lock, {"policy_id": EU_POLICY, "requested_by": "  "}, "requested_by"),
    ("unlock", unlock, {"lock_change_id": "CHG-L", "environments": ["not-a-guid"]}, "environments"),
    ("unlock", unlock, {"lock_change_id": "CHG-L", "health_timeout_seconds": 0}, "health_timeout_seconds"),
    ("unlock", unlock, {"lock_change_id": "CHG-L", "policy_id": "ep-cmk-eu"}, "policy_id"),
    ("unlock", unlock, {"lock_change_id": "bad id!"}, "lock_change_id"),
    ("retire", retire, {"rotation_change_id": "bad id!"}, "rotation_change_id"),
    ("retire", retire, {"requested_by": ""}, "requested_by"),
    ("migrate_byok", migrate_byok, {"policy_id": "not-an-arm-id"}, "policy_id"),
    (
        "migrate_byok",
        migrate_byok,
        {"policy_id": EU_POLICY, "environments": [LEGACY_ERP, "x"]},
        "environments",
    ),
    (
        "migrate_byok",
        migrate_byok,
        {"policy_id": EU_POLICY, "operation_timeout_seconds": 0},
        "operation_timeout",
    ),
    ("migrate_byok", migrate_byok, {"policy_id": EU_POLICY, "concurrency": 0}, "concurrency"),
    ("revert", revert, {"policy_id": f"{EU_POLICY}/extra/segments"}, "policy_id"),
    ("revert", revert, {"environments": ["c0de0e4a-7c2b-4e5f-9a10"]}, "environments"),
    ("revert", revert, {"policy_id": EU_POLICY, "operation_timeout_seconds": 0}, "operation_timeout"),
    ("revert", revert, {}, "Give environments to revert, or policy_id"),
]


@pytest.fixture
def idle_sim(prefect_server: None, linked_sim: RunningSimulator) -> RunningSimulator:
    """The linked simulator as it is (refused runs never reach it, so no reset is needed)."""
    return linked_sim


@pytest.mark.parametrize(
    ("name", "flow", "extra", "named"),
    MALFORMED,
    ids=[f"{m[0]}-{m[3].split()[0]}" for m in MALFORMED],
)
def test_malformed_parameters_are_refused_before_any_request(
    idle_sim: RunningSimulator, name: str, flow: Any, extra: dict[str, Any], named: str
) -> None:
    args = {"change_id": f"CHG-{name}-BAD", "requested_by": "alice", **extra}
    since = idle_sim.control.last_seq()
    state = flow(**args, return_state=True)
    assert state.is_failed(), state.message
    assert "nvalid parameter" in state.message and named in state.message, state.message
    assert idle_sim.control.requests(since=since) == []
