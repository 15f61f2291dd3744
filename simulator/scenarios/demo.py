"""The demo tenant: two admin identities, a resource group and a Key Vault (environments: see bap)."""

from __future__ import annotations

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
        "environments": [],
    }
