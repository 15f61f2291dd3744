"""Self-healing and alerts end to end: the served stack, the inventory's events, the automations, an approver.

One stack (simulator + Prefect server + served deployments) for the module. The seeded tenant has a failed link
to a Healthy policy, a journaled grant removed by hand, and a key that expires in 10 days. One inventory run
dispatches three repairs; each pauses for approval, the test answers, and the journal shows exactly the repair.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowFilter,
    FlowFilterName,
)
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from blocks import DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from blocks.connections import AzureAdminConnection, PowerPlatformAdminConnection
from cmk.errors import OperationFailedError
from cmk.inventory.remediation import REQUESTER
from cmk.state.journal import Journal
from deployments.stack import Stack, StackConfig, free_port
from flows.approval import answer_approval, find_paused_run
from simulator.scenarios.demo import KEYVAULT_ADMIN, POWERPLATFORM_ADMIN, SUBSCRIPTION_ID, TENANT_ID
from tests.flows.test_stack import wait_final
from tests.flows.webhook import WebhookRecorder
from tests.support import point_managed_identity_at

RG = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-cmk"
VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-heal"
EP_A = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-a"
EP_SOON = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-soon"
ENV_FAIL = "5e1f0000-0000-4000-8000-000000000001"
ENV_SOON = "5e1f0000-0000-4000-8000-000000000002"
REVOKED_PRINCIPAL = "0a1b2c3d-5555-4aaa-8bbb-000000000005"
SERVED = [
    "nightly-inventory",
    "remediate-finding",
    "migrate-byok",
    "regrant-access",
    "rotate-key",
    "approval-reminders",
]
REPAIRS = {"migrate_byok": "link-failed", "regrant": "access-missing", "rotate": "key-expiring"}


def scenario() -> dict[str, Any]:
    """A Healthy policy to relink to, a policy on a key expiring in 10 days, two environments."""
    rotating = {
        "attributes": {"expiryTime": "P365D"},
        "lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}],
    }
    env = {"location": "europe", "azure_region": "westeurope", "sku": "Production", "managed": True}
    return {
        "name": "self-healing",
        "tenant_id": TENANT_ID,
        "subscription_id": SUBSCRIPTION_ID,
        "default_identity": "keyvault-admin",
        "settings": {"link_seconds": 1, "unlink_seconds": 1, "lock_detection_seconds": 0},
        "identities": [KEYVAULT_ADMIN, POWERPLATFORM_ADMIN],
        "resource_groups": [{"name": "rg-cmk", "location": "westeurope"}],
        "providers": {"Microsoft.PowerPlatform": "Registered"},
        "features": {},
        "role_assignments": [{"principal": "keyvault-admin", "role": "Owner", "scope": ""}],
        "vaults": [
            {
                "name": "kv-heal",
                "resource_group": "rg-cmk",
                "location": "westeurope",
                "sku": "premium",
                "enable_soft_delete": True,
                "enable_purge_protection": True,
                "access_policies": [{"principal": "keyvault-admin", "keys": ["all"]}],
                "keys": [
                    {"name": "key-a", "expires_in_days": 300, "rotation_policy": rotating},
                    {"name": "key-soon", "expires_in_days": 10, "rotation_policy": rotating},
                ],
            }
        ],
        "enterprise_policies": [
            {"name": n, "resource_group": "rg-cmk", "vault": "kv-heal", "key": k, "location": "europe"}
            | {"grant": "access_policy", "reader_for": ["powerplatform-admin"]}
            for n, k in (("ep-a", "key-a"), ("ep-soon", "key-soon"))
        ],
        "environments": [
            {
                **env,
                "id": ENV_FAIL,
                "display_name": "Failed link",
                "encryption": "microsoft",
                "runtime": "Enabled",
            },
            {
                **env,
                "id": ENV_SOON,
                "display_name": "On the expiring key",
                "encryption": "cmk",
                "policy": "ep-soon",
                "runtime": "Enabled",
            },
        ],
    }


def seed(journal: Journal) -> None:
    """A failed link to ep-a (whose access is back afterwards) and a journaled grant removed by hand."""
    azure = AzureAdminConnection.load(DEFAULT_AZURE_BLOCK)
    pp = PowerPlatformAdminConnection.load(DEFAULT_POWERPLATFORM_BLOCK).power_platform_service()
    arm, kv = azure.arm_service(), azure.key_vault_service()
    policy = arm.get_policy(EP_A)
    assert policy.principal_id and policy.system_id
    kv.remove_access_policy(VAULT, policy.principal_id)
    with pytest.raises(OperationFailedError):
        pp.wait(pp.start_link(ENV_FAIL, policy.system_id), timeout_seconds=30)
    kv.ensure_access_policy(VAULT, policy.principal_id)  # by hand: the journal knows nothing of either
    azure.key_vault_service(journal, "CHG-GRANTS").ensure_access_policy(VAULT, REVOKED_PRINCIPAL)
    kv.remove_access_policy(VAULT, REVOKED_PRINCIPAL)


@pytest.fixture(scope="module")
def healing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The stack with alerts to a recording webhook, the tenant seeded, and one inventory run finished."""
    base = tmp_path_factory.mktemp("healing")
    webhook = WebhookRecorder()
    stack = Stack(
        StackConfig(
            port=free_port(),
            state_dir=base / "state",
            reports_dir=base / "reports",
            scenario=scenario(),
            webhook_url=webhook.url,
            only=SERVED,
            remediate="link-failed,access-missing,key-expiring",
            runner_poll_seconds=1,
            startup_timeout=150,
        )
    )
    stack.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: stack.config.api_url}):
            assert stack.sim is not None
            point_managed_identity_at(stack.sim.endpoints)
            journal = Journal(stack.config.state_dir / "journal.jsonl")
            seed(journal)
            inventory = wait_final(run_deployment("inventory/nightly-inventory", timeout=0).id)
            assert inventory.state.is_completed(), inventory.state.message
            deadline = time.monotonic() + 180
            paused = {flow: wait_paused(flow, deadline) for flow in REPAIRS}
            yield {
                "stack": stack,
                "webhook": webhook,
                "journal": journal,
                "inventory": inventory,
                "paused": paused,
            }
    finally:
        stack.stop()
        webhook.close()


def wait_paused(flow_name: str, deadline: float) -> Any:
    """The paused run of a flow, once there is one (until the monotonic deadline)."""
    while time.monotonic() < deadline:
        run = find_paused_run(flow_name=flow_name)
        if run is not None:
            return run
        time.sleep(0.5)
    ended = [(r.name, r.state.name, r.state.message) for r in runs_of(flow_name) if r.state]
    raise AssertionError(f"no paused {flow_name} run in time; its runs: {ended}")


def runs_of(flow_name: str) -> list[Any]:
    """Every flow run of a flow."""
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))


def approve(run: Any) -> Any:
    """Answer the run's approval form as an approver (not the requester), then its final state."""
    answer_approval(run.id, approver="carol", decision="approve", change_ticket="CHG-HEAL")
    return wait_final(run.id, timeout=120)


def repair_writes(journal: Journal, change_id: str) -> list[dict[str, Any]]:
    """The change's journal entries that are writes (approvals are journaled too)."""
    return [e for e in journal.entries(change_id=change_id) if not e["action"].startswith("approval.")]


def artifacts_of(flow_run_id: Any, key: str) -> list[str]:
    """The markdown of a run's artifacts with this key (results are not persisted; artifacts are)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return [str(a.data) for a in found if a.key == key]


def test_the_inventory_dispatches_each_repair_and_says_so(healing: dict[str, Any]) -> None:
    (summary,) = artifacts_of(healing["inventory"].id, "inventory-summary")
    assert summary.count("- Self-healing: dispatched to") == 3
    for run in healing["paused"].values():
        assert run.parameters["requested_by"] == REQUESTER
        assert run.parameters["change_id"].startswith("REM-")
        assert any(t.startswith("cmk-finding:") for t in run.tags)
    assert healing["paused"]["rotate"].parameters["mode"] == "key-version"


def test_high_risks_alert_with_counts_and_the_link(healing: dict[str, Any]) -> None:
    config = healing["stack"].config
    post = healing["webhook"].wait_for("found 3 high, 0 medium and 0 low risk(s)")
    assert post["subject"].startswith("CMK inventory: ")
    assert (
        "key-expiring" in post["text"] and "link-failed" in post["text"] and "access-missing" in post["text"]
    )
    assert f"{config.ui_url}/runs/flow-run/{healing['inventory'].id}" in post["text"]


def test_a_second_identical_event_starts_no_second_repair(healing: dict[str, Any]) -> None:
    before = {flow: len(runs_of(flow)) for flow in REPAIRS}
    again = wait_final(run_deployment("inventory/nightly-inventory", timeout=0).id)
    assert again.state.is_completed()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # three more dispatcher runs, each finding its repair in flight
        done = [r for r in runs_of("remediate") if r.state and r.state.is_final()]
        if len(done) >= 6:
            break
        time.sleep(0.5)
    outcomes = [
        md.split("Outcome: **", 1)[1].split("**", 1)[0]
        for r in runs_of("remediate")
        for md in artifacts_of(r.id, "remediation-dispatch")
    ]
    assert sorted(outcomes) == ["already in flight"] * 3 + ["started"] * 3
    assert {flow: len(runs_of(flow)) for flow in REPAIRS} == before


def test_the_reminder_fires_before_an_approval_expires_once_per_pause(healing: dict[str, Any]) -> None:
    webhook = healing["webhook"]
    first = wait_final(run_deployment("approval-reminders/approval-reminders", timeout=0).id)
    assert first.state.is_completed(), first.state.message
    for run in healing["paused"].values():
        post = webhook.wait_for(f"Flow run id: {run.id} (reminder)")
        assert post["subject"].startswith("Approval expires soon: ")
        assert "waits for an approval that expires at" in post["text"]
    second = wait_final(run_deployment("approval-reminders/approval-reminders", timeout=0).id)
    assert second.state.is_completed(), second.state.message
    time.sleep(3)  # any second reminder would have reached the webhook by now
    for run in healing["paused"].values():
        assert (
            sum(
                f"Flow run id: {run.id}" in p.get("text", "")
                for p in webhook.posts
                if "expires" in p["subject"]
            )
            == 1
        )


def test_a_failed_link_is_linked_again_after_approval(healing: dict[str, Any]) -> None:
    run = healing["paused"]["migrate_byok"]
    done = approve(run)
    assert done.state.is_completed(), done.state.message
    env = healing["stack"].sim.control.state()["bap"]["environments"][ENV_FAIL]
    assert env["encryption"] == "cmk"
    writes = repair_writes(healing["journal"], run.parameters["change_id"])
    assert writes and {e["action"].split(".")[0] for e in writes} == {"bap"}
    assert {e["target"].lower() for e in writes} == {ENV_FAIL}


def test_a_removed_grant_is_granted_again_after_approval(healing: dict[str, Any]) -> None:
    run = healing["paused"]["regrant"]
    done = approve(run)
    assert done.state.is_completed(), done.state.message
    writes = repair_writes(healing["journal"], run.parameters["change_id"])
    assert [(e["action"], e["target"]) for e in writes] == [("keyvault.access_policy.add", VAULT)]
    assert writes[0]["after"]["object_id"] == REVOKED_PRINCIPAL


def test_a_near_expiry_key_is_rotated_to_a_new_version_after_approval(healing: dict[str, Any]) -> None:
    run = healing["paused"]["rotate"]
    versions = healing["stack"].sim.control.state()["keyvault"]["kv-heal"]["keys"]["key-soon"]["versions"]
    done = approve(run)
    assert done.state.is_completed(), done.state.message
    after = healing["stack"].sim.control.state()["keyvault"]["kv-heal"]["keys"]["key-soon"]["versions"]
    assert len(after) == len(versions) + 1
    actions = [e["action"] for e in repair_writes(healing["journal"], run.parameters["change_id"])]
    assert "keyvault.key.new_version" in actions


def test_a_failed_change_alerts_with_its_link(healing: dict[str, Any]) -> None:
    bad = run_deployment(
        "regrant/regrant-access",
        parameters={"change_id": "CHG-BAD", "requested_by": "alice", "grants": [{"kind": "nope"}]},
        timeout=0,
    )
    assert wait_final(bad.id).state.is_failed()
    post = healing["webhook"].wait_for(f"{healing['stack'].config.ui_url}/runs/flow-run/{bad.id}")
    assert "ended Failed" in post["text"] and "CHG-BAD" in post["text"]
