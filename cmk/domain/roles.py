"""Built-in Azure role definitions the CMK procedure uses (GUIDs are the same in every tenant)."""

from __future__ import annotations

import re

BUILTIN_ROLES: dict[str, str] = {
    "reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "user access administrator": "18d7d88d-d35e-4fb5-a5c3-7773c6a72089",
    "key vault crypto service encryption user": "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "key vault crypto user": "12338af0-0e69-4776-bea7-57ae8d297424",
    "key vault crypto officer": "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
    "key vault administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "key vault reader": "21090545-7ca7-4776-b22c-e363652d74d2",
}
CRYPTO_SERVICE_ENCRYPTION_USER = BUILTIN_ROLES["key vault crypto service encryption user"]
READER = BUILTIN_ROLES["reader"]
# Roles whose data actions include keys get, wrapKey and unwrapKey.
KEY_WRAP_ROLES = frozenset(
    {
        CRYPTO_SERVICE_ENCRYPTION_USER,
        BUILTIN_ROLES["key vault crypto user"],
        BUILTIN_ROLES["key vault crypto officer"],
        BUILTIN_ROLES["key vault administrator"],
    }
)
# Roles whose actions include reading any resource (Reader is enough for the Power Platform admin).
READ_ROLES = frozenset({READER, BUILTIN_ROLES["contributor"], BUILTIN_ROLES["owner"]})

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def role_guid(role: str) -> str | None:
    """The GUID of a built-in role name, a GUID or a role definition id; None for an unknown name."""
    value = role.strip().rstrip("/").rsplit("/", 1)[-1]
    if _GUID.match(value):
        return value.lower()
    return BUILTIN_ROLES.get(role.strip().lower())


def role_definition_id(subscription_id: str, guid: str) -> str:
    """The full roleDefinitionId for a role GUID in a subscription."""
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
