"""A demo tenant that is already onboarded: policies with linked environments, for migrate/revert/lock/unlock tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulator.scenarios.demo import SUBSCRIPTION_ID, build_demo
from simulator.testing import RunningSimulator, running_simulator
from tests.support import ready_for_flows

FINANCE, HR, SALES_UAT, DEV_ALICE, LEGACY_ERP = (
    f"c0de0e4a-7c2b-4e5f-9a10-0000000e000{i}" for i in range(1, 6)
)
US_OPERATIONS, US_CLAIMS = "c0de0e4a-7c2b-4e5f-9a10-0000000a0001", "c0de0e4a-7c2b-4e5f-9a10-0000000a0002"
EU_POLICY_ENVS = [FINANCE, HR, SALES_UAT]  # linked to ep-cmk-eu
OTHER_POLICY_ENVS = [DEV_ALICE]  # linked to ep-cmk-eu-other (same vault and key)
US_POLICY_ENVS = [US_OPERATIONS]  # linked to ep-cmk-us (RBAC vault)
RG = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-cmk"
EU_POLICY = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-cmk-eu"
OTHER_POLICY = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-cmk-eu-other"
US_POLICY = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-cmk-us"
# A policy a rotation replaced long ago: no environment uses it; its key pp-old-key has an older version.
RETIRED_POLICY = f"{RG}/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-cmk-eu-old"
DEMO_VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
RBAC_VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-cmk-rbac"


def _policy(name: str, location: str, vault: str, grant: str, key: str = "pp-cmk-key") -> dict[str, Any]:
    return {
        "name": name,
        "resource_group": "rg-cmk",
        "location": location,
        "vault": vault,
        "key": key,
        "grant": grant,
        "reader_for": ["powerplatform-admin"],
    }


def build_linked() -> dict[str, Any]:
    """The demo tenant plus keys, four policies and linked environments (BYOK ones left as they are)."""
    scenario = build_demo()
    scenario["name"] = "linked"
    scenario["providers"] = {"Microsoft.PowerPlatform": "Registered"}
    scenario["vaults"][0]["keys"] = [
        {"name": "pp-cmk-key", "kty": "RSA", "size": 2048},
        {"name": "pp-old-key", "kty": "RSA", "size": 2048, "versions": 2},
    ]
    rbac_vault = {
        **scenario["vaults"][0],
        "name": "kv-cmk-rbac",
        "enable_rbac_authorization": True,
        "access_policies": [],
        "keys": [{"name": "pp-cmk-key", "kty": "RSA", "size": 2048}],
    }
    scenario["vaults"].append(rbac_vault)
    scenario["role_assignments"].append(
        {"principal": "keyvault-admin", "role": "Key Vault Crypto Officer", "scope": RBAC_VAULT}
    )
    scenario["enterprise_policies"] = [
        _policy("ep-cmk-eu", "europe", "kv-cmk-demo", "access_policy"),
        _policy("ep-cmk-eu-other", "europe", "kv-cmk-demo", "access_policy"),
        _policy("ep-cmk-us", "unitedstates", "kv-cmk-rbac", "rbac"),
        _policy("ep-cmk-eu-old", "europe", "kv-cmk-demo", "access_policy", key="pp-old-key"),
    ]
    links = {
        **dict.fromkeys(EU_POLICY_ENVS, "ep-cmk-eu"),
        **dict.fromkeys(OTHER_POLICY_ENVS, "ep-cmk-eu-other"),
        **dict.fromkeys(US_POLICY_ENVS, "ep-cmk-us"),
    }
    for env in scenario["environments"]:
        if env["id"] in links:
            env["encryption"] = "cmk"
            env["policy"] = links[env["id"]]
    return scenario


def start_linked_sim() -> Iterator[RunningSimulator]:
    """A simulator serving the linked scenario (use as a module-scoped fixture)."""
    with running_simulator(build_linked()) as sim:
        yield sim


def prepare_linked_env(sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    """Reset the linked simulator with fast operations and fresh state dirs, and point the default blocks at it."""
    with ready_for_flows(
        sim, tmp_path, link_seconds=1, unlink_seconds=1, reenable_seconds=1, lock_detection_seconds=1
    ) as ready:
        yield ready


def environments(sim: RunningSimulator) -> dict[str, dict[str, Any]]:
    """Environment id -> its simulator state."""
    return sim.control.state()["bap"]["environments"]


WRITE_METHODS = {"PUT", "POST", "PATCH", "DELETE"}


def writes_since(sim: RunningSimulator, since: int) -> list[dict[str, Any]]:
    """Mutating requests to ARM, Key Vault or BAP since a request-log mark."""
    return [
        r
        for r in sim.control.requests(since=since)
        if r["method"] in WRITE_METHODS and r["service"] in {"arm", "keyvault", "bap"}
    ]
