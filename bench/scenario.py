"""The benchmark tenant: large:N, every environment europe, managed, Production and linked to one policy."""

from __future__ import annotations

from typing import Any

from simulator.scenarios.large import build_large

OLD_POLICY = "ep-bench-old"


def bench_scenario(count: int) -> dict[str, Any]:
    """large:count, every environment europe, managed, Production and linked to one seeded policy."""
    scenario = build_large(count)
    scenario["name"] = f"bench-rotate:{count}"
    scenario["providers"] = {"Microsoft.PowerPlatform": "Registered"}
    scenario["vaults"][0]["keys"] = [{"name": "pp-cmk-key", "kty": "RSA", "size": 2048}]
    scenario["enterprise_policies"] = [
        {
            "name": OLD_POLICY,
            "resource_group": "rg-cmk",
            "location": "europe",
            "vault": "kv-cmk-eu",
            "key": "pp-cmk-key",
            "grant": "access_policy",
            "reader_for": ["powerplatform-admin"],
        }
    ]
    for env in scenario["environments"]:
        env.update(location="europe", azure_region="westeurope", sku="Production", managed=True)
        env.update(encryption="cmk", policy=OLD_POLICY, runtime="Enabled")
    return scenario
