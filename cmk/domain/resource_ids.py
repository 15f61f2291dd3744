"""Parse and compare ARM resource ids (case-insensitive, as ARM is)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cmk.errors import InvalidResourceIdError

_VAULT = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.KeyVault/vaults/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_POLICY = re.compile(
    r"^/subscriptions/(?P<sub>[0-9a-fA-F-]{36})/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.PowerPlatform/enterprisePolicies/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ResourceRef:
    """The parts of an ARM resource id."""

    subscription_id: str
    resource_group: str
    name: str
    id: str


def _parse(resource_id: str, pattern: re.Pattern[str], kind: str, example: str) -> ResourceRef:
    value = (resource_id or "").strip()
    found = pattern.match(value)
    if not found:
        raise InvalidResourceIdError(
            f"'{resource_id}' is not a {kind} resource id. Use the form {example} (no trailing slash); "
            "copy it from the resource's JSON view in the Azure portal.",
            target=resource_id,
        )
    return ResourceRef(found["sub"], found["rg"], found["name"], value)


def parse_vault_id(resource_id: str) -> ResourceRef:
    """Subscription, resource group and name of a Key Vault id."""
    return _parse(
        resource_id,
        _VAULT,
        "Key Vault",
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}",
    )


def parse_policy_id(resource_id: str) -> ResourceRef:
    """Subscription, resource group and name of an enterprise policy id."""
    return _parse(
        resource_id,
        _POLICY,
        "enterprise policy",
        "/subscriptions/{guid}/resourceGroups/{rg}/providers/Microsoft.PowerPlatform/enterprisePolicies/{name}",
    )


def vault_id(subscription_id: str, resource_group: str, name: str) -> str:
    """The ARM id of a vault."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.KeyVault/vaults/"
        + name
    )


def policy_id(subscription_id: str, resource_group: str, name: str) -> str:
    """The ARM id of an enterprise policy."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.PowerPlatform/enterprisePolicies/{name}"
    )


def same_id(a: str | None, b: str | None) -> bool:
    """Whether two resource ids name the same resource (case-insensitive, trailing slash ignored)."""
    if not a or not b:
        return False
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def scope_covers(scope: str, resource_id: str) -> bool:
    """Whether a role assignment at `scope` applies to `resource_id` (same resource or an ancestor)."""
    s = scope.rstrip("/").lower()
    r = resource_id.rstrip("/").lower()
    return s == "" or r == s or r.startswith(s + "/")
