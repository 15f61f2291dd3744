"""Microsoft.PowerPlatform/enterprisePolicies: the policy resource, its validation rules and the PolicyBackend."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.arm import errors
from simulator.arm.groups import ResourceGroupBackend
from simulator.arm.timestamps import iso
from simulator.core.errors import SimError
from simulator.core.identities import Identity
from simulator.core.ports import ArmPeers
from simulator.core.tenant import Tenant

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


class PolicyBackend:
    """Enterprise policies by lower-case ARM id, with their managed identities."""

    def __init__(
        self,
        tenant: Tenant,
        peers: ArmPeers,
        groups: ResourceGroupBackend,
        require_provider_registered: Callable[[], None],
    ) -> None:
        self.tenant = tenant
        self.peers = peers
        self.groups = groups
        self.require_provider_registered = require_provider_registered
        self.policies: dict[str, EnterprisePolicy] = {}

    def policy_id(self, resource_group: str, name: str) -> str:
        """The ARM id a policy in this group would have."""
        return f"{self.groups.rg_scope(resource_group)}/providers/{POLICY_TYPE}/{name}"

    def find_policy_by_system_id(self, system_id: str) -> EnterprisePolicy | None:
        """The enterprise policy with this systemId, case-insensitive."""
        wanted = system_id.rstrip("/").lower()
        return next((p for p in self.policies.values() if p.system_id.lower() == wanted), None)

    def find_policy_by_id(self, resource_id: str) -> EnterprisePolicy | None:
        """The enterprise policy with this ARM id, case-insensitive."""
        return self.policies.get(resource_id.rstrip("/").lower())

    def find_policies_by_name(self, name: str) -> list[EnterprisePolicy]:
        """Every enterprise policy with this name, in any resource group (case-insensitive)."""
        return [p for p in self.policies.values() if p.name.lower() == name.lower()]

    def get_policy(self, resource_group: str, name: str) -> EnterprisePolicy:
        """A policy, or 404 ResourceNotFound."""
        self.groups.get_resource_group(resource_group)
        policy = self.find_policy_by_id(self.policy_id(resource_group, name))
        if policy is None:
            raise errors.resource_not_found(POLICY_TYPE, name, resource_group)
        return policy

    def policy_json(self, policy: EnterprisePolicy) -> dict[str, Any]:
        """The EnterprisePolicy resource with its derived healthStatus."""
        return policy.to_json(self.tenant.now(), self.peers.policy_health_status(policy), iso)

    def linked(self, policy: EnterprisePolicy) -> list[str]:
        """Ids of the environments linked to the policy (BAP answers)."""
        return list(self.peers.environments_linked_to(policy.system_id) or [])

    def delete_not_allowed(self, policy: EnterprisePolicy) -> SimError:
        """The 400 a delete of a linked policy gets."""
        count = len(self.linked(policy))
        return SimError(
            400,
            "EnterprisePolicyDeleteNotAllowed",
            f"Enterprise Policy Deletion not allowed for Enterprise Policy with name {policy.name} as it is "
            "linked "
            f"with {count} environment(s). Please remove the Enterprise Policy from the environment(s) "
            "before "
            "deleting it.",
            extra={"namespace": "Quartz.EnterprisePolicy"},
        )

    def put_policy(
        self, resource_group: str, name: str, body: Any, caller_oid: str | None
    ) -> tuple[EnterprisePolicy, bool]:
        """PUT a policy (synchronous); returns (policy, created)."""
        self.groups.get_resource_group(resource_group)
        self.require_provider_registered()
        spec = parse_policy_body(body)
        existing = self.find_policy_by_id(self.policy_id(resource_group, name))
        if existing is None:
            return self.create_policy(resource_group, name, spec, caller_oid), True
        self._update_policy(existing, spec)
        return existing, False

    def patch_policy(self, resource_group: str, name: str, body: Any) -> EnterprisePolicy:
        """PATCH a policy: tags, identity, kind or properties merged into the current content."""
        policy = self.get_policy(resource_group, name)
        self.require_provider_registered()
        self._update_policy(policy, parse_policy_body(patch_body(policy, body)))
        return policy

    def _update_policy(self, policy: EnterprisePolicy, spec: PolicySpec) -> None:
        if spec.location != policy.location:
            raise SimError(
                400,
                "InvalidResourceLocation",
                f"The resource '{policy.name}' already exists in location '{policy.location}' in resource "
                "group "
                f"'{policy.resource_group}'. A resource with the same name cannot be created in location "
                f"'{spec.location}'. Please select a new resource name.",
            )
        if spec.content() != spec_of(policy).content():
            if spec.kind != policy.kind:
                raise SimError(
                    400,
                    "EnterprisePolicyKindChangeNotAllowed",
                    f"The kind of Enterprise Policy {policy.name} cannot be changed from '{policy.kind}' to "
                    f"'{spec.kind}'.",
                    extra={"namespace": "Quartz.EnterprisePolicy"},
                )
            linked = self.linked(policy)
            if linked:
                raise SimError(
                    400,
                    "EnterprisePolicyUpdateNotAllowed",
                    f"Enterprise Policy Update not allowed for Enterprise Policy with name {policy.name} as "
                    "it is "
                    f"linked with {len(linked)} environment(s). Please remove the Enterprise Policy from the "
                    "environment(s) before updating it.",
                    extra={"namespace": "Quartz.EnterprisePolicy"},
                )
        policy.vault_id, policy.key_name, policy.key_version = spec.vault_id, spec.key_name, spec.key_version
        policy.encryption_state = spec.encryption_state
        policy.extra_properties = spec.extra_properties
        policy.tags = spec.tags
        policy.updated_at = self.tenant.now()
        if spec.identity_type != policy.identity_type:
            policy.identity_type = spec.identity_type
            if spec.identity_type == "None" and policy.principal_id:
                self.tenant.identities.remove(policy.principal_id)
                policy.principal_id = None
            elif spec.identity_type == "SystemAssigned" and policy.principal_id is None:
                policy.principal_id = self._new_policy_identity(policy.name, None)
                policy.identity_visible_at = (
                    self.tenant.now() + self.tenant.settings.policy_identity_delay_seconds
                )

    def _new_policy_identity(self, name: str, object_id: str | None) -> str:
        identity = Identity(
            name=f"policy:{name}",
            object_id=object_id or str(uuid.uuid4()),
            client_id=str(uuid.uuid4()),
            kind="ManagedIdentity",
            can_sign_in=False,
        )
        self.tenant.identities.add(identity)
        return identity.object_id

    def create_policy(
        self,
        resource_group: str,
        name: str,
        spec: PolicySpec,
        caller_oid: str | None,
        *,
        system_guid: str | None = None,
        principal_id: str | None = None,
        visible_at: float | None = None,
    ) -> EnterprisePolicy:
        """A new policy (and its managed identity when SystemAssigned) in an existing group."""
        now = self.tenant.now()
        rg = self.groups.get_resource_group(resource_group)
        policy = EnterprisePolicy(
            name=name,
            subscription_id=self.tenant.subscription_id,
            resource_group=rg.name,
            location=spec.location,
            kind=spec.kind,
            system_id=f"/regions/{spec.location}/providers/{POLICY_TYPE}/{system_guid or uuid.uuid4()}",
            principal_id=None,
            tenant_id=self.tenant.tenant_id,
            vault_id=spec.vault_id,
            key_name=spec.key_name,
            key_version=spec.key_version,
            encryption_state=spec.encryption_state,
            identity_type=spec.identity_type,
            extra_properties=spec.extra_properties,
            tags=spec.tags,
            created_at=now,
            updated_at=now,
            created_by=caller_oid,
        )
        if spec.identity_type == "SystemAssigned":
            policy.principal_id = self._new_policy_identity(name, principal_id)
        policy.identity_visible_at = (
            visible_at if visible_at is not None else now + self.tenant.settings.policy_identity_delay_seconds
        )
        self.policies[policy.id.lower()] = policy
        return policy

    def delete_policy(self, resource_group: str, name: str) -> bool:
        """Delete a policy; refused while environments are linked; False when there was none."""
        self.groups.get_resource_group(resource_group)
        policy = self.find_policy_by_id(self.policy_id(resource_group, name))
        if policy is None:
            return False
        if self.linked(policy):
            raise self.delete_not_allowed(policy)
        self.remove_policy(policy)
        return True

    def remove_policy(self, policy: EnterprisePolicy) -> None:
        """Forget the policy and its managed identity."""
        self.policies.pop(policy.id.lower(), None)
        if policy.principal_id:
            self.tenant.identities.remove(policy.principal_id)

    def principal_visible(self, identity: Identity) -> bool:
        """A policy's managed identity is not in the directory until its replication delay passed."""
        if identity.kind != "ManagedIdentity":
            return True
        owner = next((p for p in self.policies.values() if p.principal_id == identity.object_id), None)
        return owner is None or owner.identity_visible(self.tenant.now())
