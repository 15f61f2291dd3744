"""A large tenant (`--scenario large:N`): N environments over five geos, deterministic from a seeded RNG.

Same identities, subscription and tenant as `demo`. Two vaults: `kv-cmk-eu` (access policies, westeurope)
and `kv-cmk-us` (RBAC, eastus), both with soft delete and purge protection and no keys yet. Environments:
about 45 % Production, 35 % Sandbox, 10 % Developer, 5 % Trial, 5 % Teams; about 85 % of the eligible SKUs are
managed; about 2 % are on legacy BYOK; the first one is the tenant's Default environment (europe). No
enterprise policy exists: every environment starts on the Microsoft-managed (or BYOK) key. Ids and names
depend only on the position, so `large:1000` and `large:2000` share their first 1000 environments.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from simulator.scenarios.demo import KEYVAULT_ADMIN, POWERPLATFORM_ADMIN, SUBSCRIPTION_ID, TENANT_ID

SEED = 20261101
GEOS: list[tuple[str, list[str], float]] = [
    ("europe", ["westeurope", "northeurope"], 0.40),
    ("unitedstates", ["eastus", "westus", "centralus"], 0.35),
    ("uk", ["uksouth", "ukwest"], 0.10),
    ("asia", ["southeastasia", "eastasia"], 0.08),
    ("australia", ["australiaeast", "australiasoutheast"], 0.07),
]
SKUS: list[tuple[str, float]] = [
    ("Production", 0.45),
    ("Sandbox", 0.35),
    ("Developer", 0.10),
    ("Trial", 0.05),
    ("Teams", 0.05),
]
TEAMS = [
    "Finance",
    "HR",
    "Sales",
    "Claims",
    "Logistics",
    "Procurement",
    "Legal",
    "Service",
    "Research",
    "Ops",
]


def _vault(name: str, group: str, location: str, rbac: bool) -> dict[str, Any]:
    """A CMK-ready vault spec."""
    return {
        "name": name,
        "resource_group": group,
        "location": location,
        "sku": "premium",
        "enable_soft_delete": True,
        "soft_delete_retention_days": 90,
        "enable_purge_protection": True,
        "enable_rbac_authorization": rbac,
        "access_policies": [] if rbac else [{"principal": "keyvault-admin", "keys": ["all"]}],
        "keys": [],
    }


def build_large(count: int) -> dict[str, Any]:
    """A scenario with `count` environments."""
    rng = random.Random(SEED)
    geo_names = [g[0] for g in GEOS]
    geo_weights = [g[2] for g in GEOS]
    regions = {g[0]: g[1] for g in GEOS}
    sku_names = [s[0] for s in SKUS]
    sku_weights = [s[1] for s in SKUS]
    environments: list[dict[str, Any]] = []
    for index in range(count):
        env_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        geo = rng.choices(geo_names, geo_weights)[0]
        region = rng.choice(regions[geo])
        sku = rng.choices(sku_names, sku_weights)[0]
        managed_roll = rng.random()
        byok_roll = rng.random()
        team = rng.choice(TEAMS)
        if index == 0:
            geo, region, sku = "europe", "westeurope", "Default"
        eligible_sku = sku not in ("Trial", "Teams")
        managed = eligible_sku and managed_roll < 0.85
        environments.append(
            {
                "id": env_id,
                "display_name": "Contoso (default)"
                if sku == "Default"
                else f"{team} {sku} {geo} #{index:05d}",
                "location": geo,
                "azure_region": region,
                "sku": sku,
                "managed": managed,
                "encryption": "byok" if managed and byok_roll < 0.02 else "microsoft",
                "runtime": "Enabled",
            }
        )
    sub = f"/subscriptions/{SUBSCRIPTION_ID}"
    return {
        "name": f"large:{count}",
        "tenant_id": TENANT_ID,
        "subscription_id": SUBSCRIPTION_ID,
        "default_identity": "keyvault-admin",
        "settings": {},
        "identities": [dict(KEYVAULT_ADMIN), dict(POWERPLATFORM_ADMIN)],
        "resource_groups": [
            {"name": "rg-cmk", "location": "westeurope"},
            {"name": "rg-cmk-us", "location": "eastus"},
        ],
        "providers": {"Microsoft.PowerPlatform": "NotRegistered"},
        "features": {"Microsoft.PowerPlatform/enterprisePoliciesPreview": "NotRegistered"},
        "role_assignments": [{"principal": "keyvault-admin", "role": "Owner", "scope": sub}],
        "vaults": [
            _vault("kv-cmk-eu", "rg-cmk", "westeurope", rbac=False),
            _vault("kv-cmk-us", "rg-cmk-us", "eastus", rbac=True),
        ],
        "enterprise_policies": [],
        "environments": environments,
    }
