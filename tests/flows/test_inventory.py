"""The inventory flow on a tenant seeded with every risk, against its own simulator over HTTPS."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from blocks import DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from blocks.connections import AzureAdminConnection, PowerPlatformAdminConnection
from cmk.errors import OperationFailedError
from cmk.state.journal import Journal
from cmk.state.key_retirements import RETIREMENTS_FILE, Retirement, RetirementRegister
from cmk.state.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from flows.inventory import inventory
from simulator.scenarios.demo import KEYVAULT_ADMIN, POWERPLATFORM_ADMIN, SUBSCRIPTION_ID, TENANT_ID
from simulator.testing import RunningSimulator, running_simulator
from tests.support import point_managed_identity_at

WRITE_METHODS = {"PUT", "POST", "PATCH", "DELETE"}
FORMER_ADMIN = {
    "name": "former-admin",
    "object_id": "0a1b2c3d-3333-4aaa-8bbb-000000000003",
    "client_id": "c11e0003-0000-4000-8000-00000000c003",
    "kind": "ServicePrincipal",
}
REVOKED_PRINCIPAL = "0a1b2c3d-4444-4aaa-8bbb-000000000004"
RG = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-cmk"


def env(suffix: str, name: str, geo: str, encryption: str = "microsoft", policy: str | None = None) -> dict:
    """A managed production environment of the risky tenant."""
    spec = {
        "id": f"1a7e0000-0000-4000-8000-{suffix}",
        "display_name": name,
        "location": geo,
        "azure_region": "westeurope" if geo == "europe" else "eastus",
        "sku": "Production",
        "managed": True,
        "encryption": encryption,
        "runtime": "Enabled",
    }
    if policy:
        spec["policy"] = policy
    return spec


ENV_EXPIRING = env("000000000001", "Linked to an expiring key", "europe", "cmk", "ep-expiring")
ENV_LOCKED = env("000000000002", "Linked to a policy without key access", "europe", "cmk", "ep-broken")
ENV_BYOK = env("000000000003", "Still on BYOK", "europe", "byok")
ENV_FAILED = env("000000000004", "Failed link", "europe")
ENV_US = env("000000000005", "US without a policy", "unitedstates")
ENV_GOOD = env("000000000006", "Linked to a healthy key", "europe", "cmk", "ep-good")


def risky_scenario() -> dict[str, Any]:
    """A tenant with each risk the inventory knows, and one healthy policy that must raise none."""
    rotating = {
        "attributes": {"expiryTime": "P365D"},
        "lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}],
    }
    return {
        "name": "inventory-risks",
        "tenant_id": TENANT_ID,
        "subscription_id": SUBSCRIPTION_ID,
        "default_identity": "keyvault-admin",
        "settings": {"link_seconds": 1, "unlink_seconds": 1, "lock_detection_seconds": 0},
        "identities": [KEYVAULT_ADMIN, POWERPLATFORM_ADMIN, FORMER_ADMIN],
        "resource_groups": [{"name": "rg-cmk", "location": "westeurope"}],
        "providers": {"Microsoft.PowerPlatform": "Registered"},
        "features": {},
        "role_assignments": [{"principal": "keyvault-admin", "role": "Owner", "scope": ""}],
        "vaults": [
            {
                "name": "kv-good",
                "resource_group": "rg-cmk",
                "location": "westeurope",
                "sku": "premium",
                "enable_soft_delete": True,
                "enable_purge_protection": True,
                "access_policies": [{"principal": "keyvault-admin", "keys": ["all"]}],
                "keys": [
                    {"name": "key-good", "expires_in_days": 300, "rotation_policy": rotating},
                    {"name": "key-expiring", "expires_in_days": 10},
                    {"name": "key-broken", "expires_in_days": 300, "rotation_policy": rotating},
                    {"name": "key-old", "versions": 2, "expires_in_days": 300, "rotation_policy": rotating},
                ],
            },
            {
                "name": "kv-weak",
                "resource_group": "rg-cmk",
                "location": "westeurope",
                "sku": "premium",
                "enable_soft_delete": False,
                "enable_purge_protection": False,
                "access_policies": [{"principal": "keyvault-admin", "keys": ["all"]}],
                "keys": [{"name": "key-forever"}, {"name": "key-expired", "expires_in_days": -1}],
            },
        ],
        "enterprise_policies": [
            {
                "name": "ep-good",
                "resource_group": "rg-cmk",
                "vault": "kv-good",
                "key": "key-good",
                "location": "europe",
                "grant": "access_policy",
            },
            {
                "name": "ep-expiring",
                "resource_group": "rg-cmk",
                "vault": "kv-good",
                "key": "key-expiring",
                "location": "europe",
                "grant": "access_policy",
            },
            {
                "name": "ep-broken",
                "resource_group": "rg-cmk",
                "vault": "kv-good",
                "key": "key-broken",
                "location": "europe",
                "reader_for": ["powerplatform-admin"],
            },
            {
                "name": "ep-forever",
                "resource_group": "rg-cmk",
                "vault": "kv-weak",
                "key": "key-forever",
                "location": "europe",
                "grant": "access_policy",
            },
            {
                "name": "ep-expired",
                "resource_group": "rg-cmk",
                "vault": "kv-weak",
                "key": "key-expired",
                "location": "europe",
                "grant": "access_policy",
            },
        ],
        "environments": [ENV_EXPIRING, ENV_LOCKED, ENV_BYOK, ENV_FAILED, ENV_US, ENV_GOOD],
    }


def seed_history(sim: RunningSimulator, state: Path) -> None:
    """A failed link, journaled grants changed behind the journal's back, and retirement records."""
    journal = Journal(state / "journal.jsonl")
    azure = AzureAdminConnection.load(DEFAULT_AZURE_BLOCK)
    pp = PowerPlatformAdminConnection.load(DEFAULT_POWERPLATFORM_BLOCK).power_platform_service()
    kv_good = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-good"
    broken = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-broken"
    good = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-good"

    # A link to the policy without key access fails: the environment keeps a Failed link status.
    arm_untracked = azure.arm_service()
    handle = pp.start_link(ENV_FAILED["id"], arm_untracked.get_policy(broken).system_id)
    with pytest.raises(OperationFailedError):
        pp.wait(handle, timeout_seconds=30)

    tracked = azure.key_vault_service(journal, "CHG-GRANTS")
    untracked = azure.key_vault_service()
    # Granted through our code, then removed by hand: access-missing.
    tracked.ensure_access_policy(kv_good, REVOKED_PRINCIPAL)
    untracked.remove_access_policy(kv_good, REVOKED_PRINCIPAL)
    # Removed through our code, then granted again by hand: access-unexpected.
    untracked.ensure_access_policy(kv_good, FORMER_ADMIN["object_id"])
    tracked.remove_access_policy(kv_good, FORMER_ADMIN["object_id"])
    untracked.ensure_access_policy(kv_good, FORMER_ADMIN["object_id"])
    # A journaled Reader role on a policy, deleted by hand: access-missing (role assignment).
    assignment_id, created = azure.arm_service(journal, "CHG-GRANTS").ensure_role_assignment(
        good, FORMER_ADMIN["object_id"], "Reader"
    )
    assert created
    assert arm_untracked.delete_role_assignment(assignment_id)

    # Retirement records: an old version past its date (still enabled), and the version ep-good uses.
    register = RetirementRegister(state / RETIREMENTS_FILE)
    past = datetime.now(UTC) - timedelta(days=1)
    vault_uri = azure.key_vault_service().get_vault(kv_good).uri
    old, newer = key_versions(sim, "key-old")
    register.record(Retirement(vault_uri, "key-old", old, past, "CHG-ROT-1"))
    register.record(Retirement(vault_uri, "key-good", key_versions(sim, "key-good")[-1], past, "CHG-ROT-2"))
    register.record(Retirement(vault_uri, "key-old", newer, past + timedelta(days=60), "CHG-ROT-3"))
    # Policy swaps: an unused old policy past its date, and one that still has an environment linked.
    policies = PolicyRetirementRegister(state / POLICY_RETIREMENTS_FILE)
    for name, change in (("ep-forever", "CHG-SWAP-1"), ("ep-expiring", "CHG-SWAP-2")):
        policy = arm_untracked.get_policy(f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/{name}")
        policies.record(
            PolicyRetirement(
                change_id=change,
                policy_id=policy.id,
                system_id=policy.system_id or "",
                principal_id=policy.principal_id or "",
                vault_id=policy.vault_id or "",
                key_name=policy.key_name or "",
                new_policy_id=good,
                new_principal_id="",
                new_vault_id=kv_good,
                retire_after=past,
                recorded_at=past - timedelta(days=30),
            )
        )


def key_versions(sim: RunningSimulator, key: str, vault: str = "kv-good") -> list[str]:
    """A simulator key's version ids, oldest first."""
    return [v["version"] for v in sim.control.state()["keyvault"][vault]["keys"][key]["versions"]]


@pytest.fixture(scope="module")
def risky_tenant(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The risky tenant's simulator, blocks pointing at it, seeded history, and one inventory run."""
    from blocks.simulator import save_simulator_blocks

    base = tmp_path_factory.mktemp("inventory")
    saved = {k: os.environ.get(k) for k in ("CMK_STATE_DIR", "CMK_REPORTS_DIR")}
    os.environ["CMK_STATE_DIR"] = str(base / "state")
    os.environ["CMK_REPORTS_DIR"] = str(base / "reports")
    try:
        with running_simulator(risky_scenario(), state_dir=base / "sim") as sim:
            point_managed_identity_at(sim.endpoints)
            save_simulator_blocks(sim.endpoints)
            seed_history(sim, base / "state")
            mark = sim.control.last_seq()
            started = time.monotonic()
            state = inventory(return_state=True)
            yield {
                "sim": sim,
                "state": state,
                "mark": mark,
                "seconds": time.monotonic() - started,
                "reports": base / "reports",
            }
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def risks_by_code(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The run's risks grouped by code."""
    out: dict[str, list[dict[str, Any]]] = {}
    for risk in result["risks"]:
        out.setdefault(risk["code"], []).append(risk)
    return out


def test_each_seeded_risk_is_found(risky_tenant: dict[str, Any]) -> None:
    state = risky_tenant["state"]
    assert state.is_completed(), state.message
    risks = risks_by_code(state.result())
    assert set(risks) == {
        "key-expiring",
        "key-expired",
        "key-no-expiry-policy",
        "key-no-rotation-policy",
        "vault-soft-delete-off",
        "vault-purge-protection-off",
        "policy-unhealthy",
        "environment-locked",
        "link-failed",
        "byok-environment",
        "geo-without-policy",
        "access-missing",
        "access-unexpected",
        "key-version-past-retire-after",
        "key-version-retire-blocked",
        "policy-past-retire-after",
        "policy-retire-blocked",
    }
    assert [r["target"] for r in risks["geo-without-policy"]] == ["unitedstates"]
    assert {r["target"] for r in risks["vault-purge-protection-off"]} == {
        f"{RG}/providers/Microsoft.KeyVault/vaults/kv-weak"
    }
    assert [r["target"].rsplit("/", 1)[-1] for r in risks["key-no-expiry-policy"]] == ["key-forever"]
    expiring = risks["key-expiring"][0]
    assert "key-expiring" in expiring["target"] and expiring["severity"] == "high"
    assert expiring["environments"] == 1
    # ep-broken lacks key access; ep-expired cannot use its expired key.
    assert {r["target"].rsplit("/", 1)[-1] for r in risks["policy-unhealthy"]} == {"ep-broken", "ep-expired"}
    missing = " ".join(r["message"] for r in risks["access-missing"])
    assert REVOKED_PRINCIPAL in missing and "ep-good" in missing
    assert FORMER_ADMIN["object_id"] in risks["access-unexpected"][0]["message"]
    assert len(risks["key-version-past-retire-after"]) == 1  # the future-dated record is not due
    assert "key-old" in risks["key-version-past-retire-after"][0]["target"]
    assert "key-good" in risks["key-version-retire-blocked"][0]["target"]
    assert [r["target"].rsplit("/", 1)[-1] for r in risks["policy-past-retire-after"]] == ["ep-forever"]
    blocked = risks["policy-retire-blocked"]
    assert [r["target"].rsplit("/", 1)[-1] for r in blocked] == ["ep-expiring"] and blocked[0][
        "environments"
    ] == 1
    # The healthy policy's key raises nothing but the blocked retirement recorded against it.
    assert {r["code"] for r in state.result()["risks"] if "/keys/key-good" in r["target"]} == {
        "key-version-retire-blocked"
    }


def test_rows_describe_every_environment(risky_tenant: dict[str, Any]) -> None:
    sim, result = risky_tenant["sim"], risky_tenant["state"].result()
    assert result["environments"] == 6 and result["policies"] == 5
    env_csv, risk_csv = (Path(p) for p in result["csv"])
    rows = pd.read_csv(env_csv, keep_default_na=False).set_index("environment_id")
    assert len(rows) == 6 and len(pd.read_csv(risk_csv)) == len(result["risks"])
    expiring = rows.loc[ENV_EXPIRING["id"]]
    assert expiring["policy"] == "ep-expiring" and expiring["vault"] == "kv-good"
    assert (
        expiring["key"] == "key-expiring" and expiring["key_version"] == key_versions(sim, "key-expiring")[-1]
    )
    assert expiring["key_expires_on"] and expiring["key_managed_by"] == "Customer"
    assert expiring["policy_health"] == "Healthy" and "key-expiring" in expiring["risks"]
    locked = rows.loc[ENV_LOCKED["id"]]
    assert locked["runtime_state"] == "Disabled" and "environment-locked" in locked["risks"]
    assert rows.loc[ENV_BYOK["id"]]["key_source"] == "BYOK"
    assert rows.loc[ENV_FAILED["id"]]["link_status"] == "Failed"
    assert rows.loc[ENV_GOOD["id"]]["risks"] == ""
    assert "geo-without-policy" in rows.loc[ENV_US["id"]]["risks"]


def test_inventory_is_read_only_and_reads_in_bulk(risky_tenant: dict[str, Any]) -> None:
    sim = risky_tenant["sim"]
    requests = sim.control.requests(since=risky_tenant["mark"])
    services = {"arm", "keyvault", "bap"}
    assert [r for r in requests if r["method"] in WRITE_METHODS and r["service"] in services] == []
    bap = [r for r in requests if r["service"] == "bap"]
    assert len(bap) == 1  # one paged environment list (6 environments fit one page)
    policy_lists = [
        r for r in requests if r["service"] == "arm" and r["path"].lower().endswith("/enterprisepolicies")
    ]
    assert len(policy_lists) == 1


def test_artifacts_are_keyed_for_history(risky_tenant: dict[str, Any]) -> None:
    flow_run_id = risky_tenant["state"].state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    by_key = {a.key: a for a in found if a.key}
    assert {"inventory-environments", "inventory-risks", "inventory-summary"} <= set(by_key)
    assert "key-expiring" in by_key["inventory-summary"].data
    assert len(by_key["inventory-environments"].data) > 0


def test_fail_on_high_ends_the_run_failed(risky_tenant: dict[str, Any]) -> None:
    state = inventory(fail_on="high", return_state=True)
    assert state.is_failed()
    assert "high" in state.message and "inventory-summary" in state.message


def test_bad_margin_is_refused_before_any_read(risky_tenant: dict[str, Any]) -> None:
    sim = risky_tenant["sim"]
    mark = sim.control.last_seq()
    state = inventory(expiry_margin_days=-1, return_state=True)
    assert state.is_failed() and "expiry_margin_days" in state.message
    assert sim.control.requests(since=mark, service="bap") == []
