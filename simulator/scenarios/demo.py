"""The demo tenant: two admin identities, a resource group, a Key Vault and twelve environments in two geos.

Environments (`DEMO_ENVIRONMENTS`; ids are GUIDs whose last group tells geo and number, e.g. ...0000000e0001):

| name | geo | sku | managed | key | notes |
|---|---|---|---|---|---|
| Contoso Finance | europe | Production | yes | Microsoft | eligible for onboarding in europe |
| Contoso HR | europe | Production | yes | Microsoft | eligible for onboarding in europe |
| Contoso Sales UAT | europe | Sandbox | yes | Microsoft | eligible for onboarding in europe |
| Contoso Dev (Alice) | europe | Developer | yes | Microsoft | eligible for onboarding in europe |
| Contoso Legacy ERP | europe | Production | yes | BYOK | legacy BYOK: move to CMK by linking |
| Contoso Marketing Sandbox | europe | Sandbox | no | Microsoft | not managed (enable governance first) |
| Contoso (default) | europe | Default | no | Microsoft | the tenant's default environment |
| Contoso Trial | europe | Trial | no | Microsoft | Trial: never eligible |
| Project Falcon (Teams) | europe | Teams | no | Microsoft | Teams: never eligible |
| Contoso US Operations | unitedstates | Production | yes | Microsoft | wrong geo for a europe policy |
| Contoso US Claims | unitedstates | Sandbox | yes | BYOK | legacy BYOK in the US geo |
| Contoso US Dev | unitedstates | Developer | no | Microsoft | wrong geo and not managed |

"Eligible for onboarding in europe" = geo europe, a Managed Environment, not Trial or Teams, still on the
Microsoft-managed key: exactly the four in `EUROPE_ELIGIBLE`. The two BYOK environments
(`BYOK_ENVIRONMENTS`) are also linkable (that is the BYOK -> CMK migration). The tenant starts with no
enterprise policy and no key.
"""

from __future__ import annotations

import copy
from typing import Any

TENANT_ID = "7d5a6c2e-3b1f-4c8a-9e2d-1f0a4b6c8d10"
SUBSCRIPTION_ID = "a3c1e5f7-2b4d-4e6f-8a0c-9d1e3f5a7b20"
KEYVAULT_ADMIN = {
    "name": "keyvault-admin",
    "object_id": "0a1b2c3d-1111-4aaa-8bbb-000000000001",
    "client_id": "c11e0001-0000-4000-8000-00000000c001",
    "kind": "ServicePrincipal",
}
POWERPLATFORM_ADMIN = {
    "name": "powerplatform-admin",
    "object_id": "0a1b2c3d-2222-4aaa-8bbb-000000000002",
    "client_id": "c11e0002-0000-4000-8000-00000000c002",
    "kind": "ServicePrincipal",
    "directory_roles": ["PowerPlatformAdministrator"],
}


def _env(
    suffix: str, name: str, geo: str, region: str, sku: str, managed: bool, encryption: str = "microsoft"
) -> dict[str, Any]:
    """One scenario environment."""
    return {
        "id": f"c0de0e4a-7c2b-4e5f-9a10-{suffix}",
        "display_name": name,
        "location": geo,
        "azure_region": region,
        "sku": sku,
        "managed": managed,
        "encryption": encryption,
        "runtime": "Enabled",
    }


DEMO_ENVIRONMENTS: list[dict[str, Any]] = [
    _env("0000000e0001", "Contoso Finance", "europe", "westeurope", "Production", True),
    _env("0000000e0002", "Contoso HR", "europe", "northeurope", "Production", True),
    _env("0000000e0003", "Contoso Sales UAT", "europe", "westeurope", "Sandbox", True),
    _env("0000000e0004", "Contoso Dev (Alice)", "europe", "westeurope", "Developer", True),
    _env("0000000e0005", "Contoso Legacy ERP", "europe", "northeurope", "Production", True, "byok"),
    _env("0000000e0006", "Contoso Marketing Sandbox", "europe", "westeurope", "Sandbox", False),
    _env("0000000e0007", "Contoso (default)", "europe", "westeurope", "Default", False),
    _env("0000000e0008", "Contoso Trial", "europe", "westeurope", "Trial", False),
    _env("0000000e0009", "Project Falcon (Teams)", "europe", "northeurope", "Teams", False),
    _env("0000000a0001", "Contoso US Operations", "unitedstates", "eastus", "Production", True),
    _env("0000000a0002", "Contoso US Claims", "unitedstates", "westus", "Sandbox", True, "byok"),
    _env("0000000a0003", "Contoso US Dev", "unitedstates", "eastus", "Developer", False),
]
EUROPE_ELIGIBLE: list[str] = [e["id"] for e in DEMO_ENVIRONMENTS[:4]]
BYOK_ENVIRONMENTS: list[str] = [e["id"] for e in DEMO_ENVIRONMENTS if e["encryption"] == "byok"]


def build_demo() -> dict[str, Any]:
    """The demo scenario as a dict."""
    sub = f"/subscriptions/{SUBSCRIPTION_ID}"
    return {
        "name": "demo",
        "tenant_id": TENANT_ID,
        "subscription_id": SUBSCRIPTION_ID,
        "default_identity": "keyvault-admin",
        "settings": {},
        "identities": [KEYVAULT_ADMIN, POWERPLATFORM_ADMIN],
        "resource_groups": [{"name": "rg-cmk", "location": "westeurope"}],
        "providers": {"Microsoft.PowerPlatform": "NotRegistered"},
        "features": {"Microsoft.PowerPlatform/enterprisePoliciesPreview": "NotRegistered"},
        "role_assignments": [{"principal": "keyvault-admin", "role": "Owner", "scope": sub}],
        "vaults": [
            {
                "name": "kv-cmk-demo",
                "resource_group": "rg-cmk",
                "location": "westeurope",
                "sku": "premium",
                "enable_soft_delete": True,
                "soft_delete_retention_days": 90,
                "enable_purge_protection": True,
                "enable_rbac_authorization": False,
                "access_policies": [{"principal": "keyvault-admin", "keys": ["all"]}],
                "keys": [],
            }
        ],
        "enterprise_policies": [],
        "environments": copy.deepcopy(DEMO_ENVIRONMENTS),
    }
