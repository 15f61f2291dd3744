"""Microsoft.PowerPlatform/enterprisePolicies: the policy resource and its validation rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from simulator.core.errors import SimError

POLICY_TYPE = "Microsoft.PowerPlatform/enterprisePolicies"
POLICY_API_VERSIONS = ["2020-10-30", "2020-10-30-preview"]
PP_GEOS = [
    "unitedstates",
    "southafrica",
    "uk",
    "japan",
    "india",
    "france",
    "europe",
    "germany",
    "switzerland",
    "canada",
    "brazil",
    "australia",
    "asia",
    "uae",
    "korea",
    "norway",
    "singapore",
    "sweden",
]
POLICY_KINDS = ["Lockbox", "PrivateEndpoint", "Encryption", "NetworkInjection", "Identity"]
_VAULT_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/[^/]+$",
    re.IGNORECASE,
)


@dataclass
class EnterprisePolicy:
    """An enterprise policy; principal_id is always the identity's object id (see identity_visible)."""

    name: str
    subscription_id: str
    resource_group: str
    location: str
    kind: str
    system_id: str
    principal_id: str | None
    tenant_id: str
    vault_id: str | None = None
    key_name: str | None = None
    key_version: str | None = None
    encryption_state: str = "Enabled"
    identity_type: str = "SystemAssigned"
    extra_properties: dict[str, Any] = field(default_factory=dict)  # other kinds' properties, kept verbatim
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    identity_visible_at: float = 0.0
    created_by: str | None = None
    updated_at: float = 0.0

    @property
    def id(self) -> str:
        """The policy's ARM id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{POLICY_TYPE}/{self.name}"
        )

    def identity_visible(self, now: float) -> bool:
        """Whether identity.principalId is shown yet (Entra replication delay)."""
        return self.principal_id is not None and now >= self.identity_visible_at

    def visible_principal_id(self, now: float) -> str | None:
        """The principal id as a GET shows it now."""
        return self.principal_id if self.identity_visible(now) else None

    def to_json(self, now: float, health_status: str, iso: Any) -> dict[str, Any]:
        """The EnterprisePolicy resource as ARM returns it."""
        identity: dict[str, Any] = {"type": self.identity_type}
        if self.identity_type == "SystemAssigned" and self.identity_visible(now):
            identity.update(
                principalId=self.principal_id,
                tenantId=self.tenant_id,
                systemAssignedIdentityPrincipalId=self.principal_id,
            )
        properties: dict[str, Any] = {"systemId": self.system_id, "healthStatus": health_status}
        properties.update(self.extra_properties)
        if self.kind == "Encryption":
            key: dict[str, Any] = {"name": self.key_name}
            if self.key_version:
                key["version"] = self.key_version
            properties["encryption"] = {
                "state": self.encryption_state,
                "keyVault": {"id": self.vault_id, "key": key},
            }
            properties.setdefault("networkInjection", None)
            properties.setdefault("lockbox", None)
        return {
            "id": self.id,
            "name": self.name,
            "type": POLICY_TYPE,
            "location": self.location,
            "kind": self.kind,
            "identity": identity,
            "properties": properties,
            "systemData": {
                "createdBy": self.created_by,
                "createdByType": "Application",
                "createdAt": iso(self.created_at),
                "lastModifiedBy": self.created_by,
                "lastModifiedByType": "Application",
                "lastModifiedAt": iso(self.updated_at or self.created_at),
            },
            "tags": dict(self.tags),
        }


@dataclass
class PolicySpec:
    """The validated content of a PUT body (what a policy should become)."""

    location: str
    kind: str
    identity_type: str
    vault_id: str | None
    key_name: str | None
    key_version: str | None
    encryption_state: str
    extra_properties: dict[str, Any]
    tags: dict[str, str]

    def content(self) -> tuple[Any, ...]:
        """What counts as the policy's content (a change of it is refused while linked)."""
        vault = self.vault_id.lower() if self.vault_id else None
        return (self.kind, self.identity_type, vault, self.key_name, self.key_version, self.encryption_state)


def location_not_available(location: str) -> SimError:
    """400 LocationNotAvailableForResourceType, as ARM answers for a location outside the RP's list."""
    return SimError(
        400,
        "LocationNotAvailableForResourceType",
        f"The provided location '{location}' is not available for resource type '{POLICY_TYPE}'. "
        f"List of available regions for the resource type is '{','.join(PP_GEOS)}'.",
    )


def parse_policy_body(body: Any) -> PolicySpec:
    """Validate a PUT body: location (a Power Platform geo), kind, identity and the Encryption key."""
    if not isinstance(body, dict):
        raise SimError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    location = body.get("location")
    if not location or not isinstance(location, str):
        raise SimError(400, "LocationRequired", "The location property is required for this definition.")
    normalised = location.replace(" ", "").lower()
    if normalised not in PP_GEOS:
        raise location_not_available(location)
    kind = body.get("kind")
    match = next((k for k in POLICY_KINDS if isinstance(kind, str) and k.lower() == kind.lower()), None)
    if match is None:
        raise SimError(
            400,
            "InvalidEnterprisePolicyKind",
            f"The enterprise policy kind '{kind}' is invalid. Allowed values are {', '.join(POLICY_KINDS)}.",
            extra={"target": "kind"},
        )
    identity = body.get("identity") or {}
    identity_type = str(identity.get("type") or "None")
    if identity_type.lower() not in ("systemassigned", "none"):
        raise SimError(
            400,
            "InvalidIdentityType",
            f"The identity type '{identity_type}' is invalid. Allowed values are SystemAssigned and None.",
            extra={"target": "identity.type"},
        )
    identity_type = "SystemAssigned" if identity_type.lower() == "systemassigned" else "None"
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise SimError(400, "InvalidRequestContent", "The property 'properties' must be an object.")
    vault_id = key_name = key_version = None
    state = "Enabled"
    extra = {k: v for k, v in properties.items() if k not in ("encryption", "systemId", "healthStatus")}
    if match == "Encryption":
        if identity_type != "SystemAssigned":
            raise SimError(
                400,
                "InvalidEnterprisePolicyIdentity",
                "An enterprise policy of kind 'Encryption' requires identity.type 'SystemAssigned'.",
                extra={"target": "identity.type"},
            )
        encryption = properties.get("encryption") or {}
        key_vault = encryption.get("keyVault") or {}
        vault_id = key_vault.get("id")
        if not isinstance(vault_id, str) or not _VAULT_ID.match(vault_id):
            raise SimError(
                400,
                "InvalidKeyVaultId",
                f"The property 'properties.encryption.keyVault.id' must be the resource id of a key vault "
                "(/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}); "
                f"got '{vault_id}'.",
                extra={"target": "properties.encryption.keyVault.id"},
            )
        key = key_vault.get("key") or {}
        key_name = key.get("name")
        if not isinstance(key_name, str) or not re.match(r"^[0-9a-zA-Z-]+$", key_name):
            raise SimError(
                400,
                "InvalidKeyName",
                f"The property 'properties.encryption.keyVault.key.name' is required and must match "
                f"^[0-9a-zA-Z-]+$; got '{key_name}'.",
                extra={"target": "properties.encryption.keyVault.key.name"},
            )
        key_version = key.get("version") or None
        state = str(encryption.get("state") or "Enabled")
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise SimError(400, "InvalidRequestContent", "The property 'tags' must be an object.")
    return PolicySpec(
        location=normalised,
        kind=match,
        identity_type=identity_type,
        vault_id=vault_id,
        key_name=key_name,
        key_version=key_version,
        encryption_state=state,
        extra_properties=extra,
        tags={str(k): str(v) for k, v in tags.items()},
    )


def spec_of(policy: EnterprisePolicy) -> PolicySpec:
    """The current content of a policy, in the shape of a PUT body."""
    return PolicySpec(
        location=policy.location,
        kind=policy.kind,
        identity_type=policy.identity_type,
        vault_id=policy.vault_id,
        key_name=policy.key_name,
        key_version=policy.key_version,
        encryption_state=policy.encryption_state,
        extra_properties=dict(policy.extra_properties),
        tags=dict(policy.tags),
    )


def patch_body(policy: EnterprisePolicy, patch: Any) -> dict[str, Any]:
    """A PUT-shaped body: the policy's current content with a PATCH merged in."""
    if not isinstance(patch, dict):
        raise SimError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    current = spec_of(policy)
    body: dict[str, Any] = {
        "location": policy.location,
        "kind": patch.get("kind", current.kind),
        "identity": patch.get("identity") or {"type": current.identity_type},
        "tags": patch.get("tags", current.tags),
        "properties": dict(current.extra_properties),
    }
    if current.kind == "Encryption":
        key: dict[str, Any] = {"name": current.key_name, "version": current.key_version}
        body["properties"]["encryption"] = {
            "state": current.encryption_state,
            "keyVault": {"id": current.vault_id, "key": key},
        }
    props = patch.get("properties") or {}
    encryption = props.get("encryption")
    if isinstance(encryption, dict):
        merged = dict(body["properties"].get("encryption") or {})
        if "state" in encryption:
            merged["state"] = encryption["state"]
        if isinstance(encryption.get("keyVault"), dict):
            kv = dict(merged.get("keyVault") or {})
            if "id" in encryption["keyVault"]:
                kv["id"] = encryption["keyVault"]["id"]
            if isinstance(encryption["keyVault"].get("key"), dict):
                kv["key"] = {**(kv.get("key") or {}), **encryption["keyVault"]["key"]}
            merged["keyVault"] = kv
        body["properties"]["encryption"] = merged
    for name, value in props.items():
        if name not in ("encryption", "systemId", "healthStatus"):
            body["properties"][name] = value
    return body
