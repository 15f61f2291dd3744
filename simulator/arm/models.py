"""ARM state and rules (no HTTP): groups, providers, features, vaults, RBAC, deployments, policies."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator.arm import errors
from simulator.arm.policies import (
    POLICY_API_VERSIONS,
    POLICY_TYPE,
    PP_GEOS,
    EnterprisePolicy,
    PolicySpec,
    parse_policy_body,
    patch_body,
    spec_of,
)
from simulator.arm.rbac import BUILTIN_ROLES, RoleAssignment, RoleDefinition, resolve_role, scope_covers
from simulator.arm.templates import TemplateError, TemplatePlan, plan
from simulator.arm.vaults import (
    AccessPolicyEntry,
    Vault,
    apply_properties,
    update_access_policies,
    validate_vault_name,
)
from simulator.core.errors import SimError
from simulator.core.identities import Identity
from simulator.core.ports import ArmPeers
from simulator.core.tenant import Tenant

PP_NAMESPACE = "Microsoft.PowerPlatform"
KNOWN_FEATURES = {
    "microsoft.powerplatform/enterprisepoliciespreview": "Microsoft.PowerPlatform/enterprisePoliciesPreview"
}
AZURE_REGIONS = [
    "westeurope",
    "northeurope",
    "eastus",
    "eastus2",
    "westus",
    "westus2",
    "centralus",
    "uksouth",
]
_PROVIDERS: dict[str, list[dict[str, Any]]] = {
    "Microsoft.Resources": [
        {"resourceType": "resourceGroups", "locations": AZURE_REGIONS, "apiVersions": ["2025-04-01"]},
        {
            "resourceType": "deployments",
            "locations": AZURE_REGIONS,
            "apiVersions": ["2026-06-01", "2025-04-01"],
        },
    ],
    "Microsoft.Authorization": [
        {"resourceType": "roleAssignments", "locations": [], "apiVersions": ["2022-04-01"]},
        {"resourceType": "roleDefinitions", "locations": [], "apiVersions": ["2022-04-01"]},
    ],
    "Microsoft.Features": [{"resourceType": "features", "locations": [], "apiVersions": ["2021-07-01"]}],
    "Microsoft.KeyVault": [
        {"resourceType": "vaults", "locations": AZURE_REGIONS, "apiVersions": ["2026-05-15", "2023-07-01"]},
        {"resourceType": "deletedVaults", "locations": [], "apiVersions": ["2026-05-15", "2023-07-01"]},
    ],
    "Microsoft.ManagedIdentity": [
        {"resourceType": "userAssignedIdentities", "locations": AZURE_REGIONS, "apiVersions": ["2023-01-31"]}
    ],
    "Microsoft.Network": [
        {"resourceType": "virtualNetworks", "locations": AZURE_REGIONS, "apiVersions": ["2024-05-01"]}
    ],
    PP_NAMESPACE: [
        {"resourceType": "enterprisePolicies", "locations": PP_GEOS, "apiVersions": POLICY_API_VERSIONS},
        {"resourceType": "operations", "locations": [], "apiVersions": POLICY_API_VERSIONS},
    ],
}
_ALWAYS_REGISTERED = {"microsoft.resources", "microsoft.authorization", "microsoft.features"}


def iso(timestamp: float) -> str:
    """ISO-8601 UTC as ARM writes it."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ResourceGroup:
    """A resource group."""

    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)

    def to_json(self, subscription_id: str) -> dict[str, Any]:
        """The ResourceGroup resource."""
        return {
            "id": f"/subscriptions/{subscription_id}/resourceGroups/{self.name}",
            "name": self.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.location,
            "tags": dict(self.tags),
            "properties": {"provisioningState": "Succeeded"},
        }


@dataclass
class Registration:
    """A provider or feature registration whose state is computed from simulated time."""

    name: str
    initial_state: str = "NotRegistered"
    started_at: float | None = None

    def state(self, now: float, seconds: float) -> str:
        """NotRegistered (or the seeded state), Registering for `seconds`, then Registered."""
        if self.started_at is None:
            return self.initial_state
        return "Registered" if now - self.started_at >= seconds else "Registering"


@dataclass
class AsyncOperation:
    """An Azure-AsyncOperation / Location status resource."""

    id: str
    kind: str  # vault | deployment | resourceGroupDelete | purge
    resource_id: str
    started_at: float
    done_at: float
    error: dict[str, Any] | None = None
    error_status: int = 400


@dataclass
class Deployment:
    """A template deployment at resource-group scope."""

    name: str
    subscription_id: str
    resource_group: str
    template: dict[str, Any]
    parameters: dict[str, Any]
    mode: str
    caller_oid: str
    started_at: float
    done_at: float
    correlation_id: str
    operation_id: str
    plan: TemplatePlan | None = None
    plan_error: TemplateError | None = None
    state: str = "Accepted"  # Accepted -> Running -> Succeeded | Failed
    error: dict[str, Any] | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    output_resources: list[str] = field(default_factory=list)
    finished_at: float | None = None

    @property
    def id(self) -> str:
        """The deployment's ARM id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Resources/deployments/{self.name}"
        )

    def provisioning_state(self, now: float) -> str:
        """Accepted, Running, Succeeded or Failed."""
        if self.state in ("Succeeded", "Failed"):
            return self.state
        return "Running" if now > self.started_at else "Accepted"

    def to_json(self, now: float) -> dict[str, Any]:
        """The DeploymentExtended resource."""
        end = self.finished_at if self.finished_at is not None else now
        params_out = {
            name: {
                "type": type(entry.get("value")).__name__.replace("str", "String"),
                "value": entry.get("value"),
            }
            for name, entry in self.parameters.items()
            if isinstance(entry, dict)
        }
        properties: dict[str, Any] = {
            "templateHash": hashlib.sha256(repr(self.template).encode()).hexdigest()[:20],
            "parameters": params_out,
            "mode": self.mode,
            "provisioningState": self.provisioning_state(now),
            "timestamp": iso(end),
            "duration": f"PT{max(0.0, end - self.started_at):.3f}S",
            "correlationId": self.correlation_id,
            "providers": [
                {"namespace": PP_NAMESPACE, "resourceTypes": [{"resourceType": "enterprisePolicies"}]}
            ],
            "dependencies": [],
            "outputs": self.outputs if self.state == "Succeeded" else None,
            "outputResources": [{"id": rid} for rid in self.output_resources],
        }
        if self.error:
            properties["error"] = self.error
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Resources/deployments",
            "properties": properties,
        }


class ArmState:
    """Resource groups, providers, features, vaults, role assignments, deployments, enterprise policies."""

    def __init__(self, tenant: Tenant, peers: ArmPeers) -> None:
        self.tenant = tenant
        self.peers = peers
        self.resource_groups: dict[str, ResourceGroup] = {}
        self.providers: dict[str, Registration] = {}
        self.features: dict[str, Registration] = {}
        self.vaults: dict[str, Vault] = {}  # live vaults by lower-case name (names are global)
        self.deleted_vaults: dict[str, Vault] = {}
        self.role_assignments: dict[str, RoleAssignment] = {}  # by lower-case assignment id
        self.deployments: dict[tuple[str, str], Deployment] = {}
        self.policies: dict[str, EnterprisePolicy] = {}  # by lower-case ARM id
        self.operations: dict[str, AsyncOperation] = {}

    @property
    def subscription_id(self) -> str:
        """The one subscription of the simulated tenant."""
        return self.tenant.subscription_id

    def now(self) -> float:
        """Simulated time."""
        return self.tenant.now()

    # --- scenario ---------------------------------------------------------------------
    def load(self, scenario: dict[str, Any]) -> None:
        """Seed from scenario sections resource_groups, providers, features, role_assignments, vaults,
        enterprise_policies."""
        for ns in _PROVIDERS:
            default = (
                "Registered" if ns.lower() in _ALWAYS_REGISTERED or ns != PP_NAMESPACE else "NotRegistered"
            )
            self.providers[ns.lower()] = Registration(ns, default)
        for ns, state in (scenario.get("providers") or {}).items():
            canonical = next((n for n in _PROVIDERS if n.lower() == ns.lower()), ns)
            self.providers[ns.lower()] = Registration(canonical, state)
        for key, canonical in KNOWN_FEATURES.items():
            self.features[key] = Registration(canonical, "NotRegistered")
        for name, state in (scenario.get("features") or {}).items():
            self.features[name.lower()] = Registration(name, state)
        for spec in scenario.get("resource_groups") or []:
            rg = ResourceGroup(spec["name"], spec.get("location", "westeurope"), dict(spec.get("tags") or {}))
            self.resource_groups[rg.name.lower()] = rg
        for spec in scenario.get("role_assignments") or []:
            principal = self._scenario_principal(spec["principal"])
            role = resolve_role(spec["role"])
            if role is None:
                raise ValueError(f"scenario role_assignments: unknown role {spec['role']!r}")
            self._add_assignment(
                self._scenario_scope(spec.get("scope", "")), role, principal, spec.get("name")
            )
        for spec in scenario.get("vaults") or []:
            self._load_vault(spec)
        for spec in scenario.get("enterprise_policies") or []:
            self._load_policy(spec)

    def _scenario_principal(self, ref: str) -> str:
        identity = self.tenant.resolve_principal(ref)
        if identity is None:
            raise ValueError(f"scenario: unknown principal {ref!r}")
        return identity.object_id

    def _scenario_scope(self, scope: str) -> str:
        """A scenario scope: a full ARM id, '' for the subscription, or a resource group name."""
        if not scope or scope == "subscription":
            return f"/subscriptions/{self.subscription_id}"
        if scope.startswith("/"):
            return scope
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{scope}"

    def _load_vault(self, spec: dict[str, Any]) -> None:
        vault = Vault(
            name=spec["name"],
            subscription_id=self.subscription_id,
            resource_group=spec.get("resource_group", "rg-cmk"),
            location=spec.get("location", "westeurope"),
            tenant_id=self.tenant.tenant_id,
            sku=spec.get("sku", "standard"),
            enable_soft_delete=spec.get("enable_soft_delete", True),
            soft_delete_retention_days=spec.get("soft_delete_retention_days", 90),
            enable_purge_protection=spec.get("enable_purge_protection", False),
            enable_rbac_authorization=spec.get("enable_rbac_authorization", False),
            tags=dict(spec.get("tags") or {}),
            created_at=self.now(),
            ready_at=0.0,
        )
        for entry in spec.get("access_policies") or []:
            vault.access_policies.append(
                AccessPolicyEntry(
                    tenant_id=self.tenant.tenant_id,
                    object_id=self._scenario_principal(entry["principal"]),
                    keys=list(entry.get("keys") or []),
                    secrets=list(entry.get("secrets") or []),
                    certificates=list(entry.get("certificates") or []),
                )
            )
        vault.vault_uri = self._vault_uri(vault.name)
        self.vaults[vault.name.lower()] = vault

    def _load_policy(self, spec: dict[str, Any]) -> None:
        vault = self.find_vault(spec["vault"]) if spec.get("vault") else None
        if spec.get("vault") and vault is None:
            raise ValueError(f"scenario enterprise_policies: unknown vault {spec['vault']!r}")
        body = {
            "location": spec.get("location", "unitedstates"),
            "kind": spec.get("kind", "Encryption"),
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "encryption": {
                    "state": "Enabled",
                    "keyVault": {
                        "id": vault.id if vault else None,
                        "key": {"name": spec.get("key"), "version": spec.get("key_version")},
                    },
                }
            },
            "tags": spec.get("tags") or {},
        }
        policy = self._create_policy(
            spec.get("resource_group", "rg-cmk"),
            spec["name"],
            parse_policy_body(body),
            None,
            system_guid=spec.get("system_guid"),
            principal_id=spec.get("principal_id"),
            visible_at=0.0,
        )
        grant = spec.get("grant")
        if grant == "access_policy" and vault is not None and policy.principal_id:
            vault.access_policies.append(
                AccessPolicyEntry(
                    self.tenant.tenant_id, policy.principal_id, keys=["get", "wrapKey", "unwrapKey"]
                )
            )
        elif grant == "rbac" and vault is not None and policy.principal_id:
            role = resolve_role("Key Vault Crypto Service Encryption User")
            assert role is not None
            self._add_assignment(vault.id, role, policy.principal_id, None)
        reader = resolve_role("Reader")
        assert reader is not None
        for name in spec.get("reader_for") or []:
            self._add_assignment(policy.id, reader, self._scenario_principal(name), None)

    # --- time ---------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Settle due deployments and purge soft-deleted vaults whose retention ended."""
        for deployment in list(self.deployments.values()):
            if deployment.state in ("Accepted", "Running") and now >= deployment.done_at:
                self._execute(deployment, now)
        for name, vault in list(self.deleted_vaults.items()):
            if vault.scheduled_purge_at is not None and now >= vault.scheduled_purge_at:
                self._purge(name)

    # --- dump ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """State as JSON."""
        now = self.now()
        settings = self.tenant.settings
        return {
            "resource_groups": [rg.to_json(self.subscription_id) for rg in self.resource_groups.values()],
            "providers": {
                r.name: r.state(now, settings.provider_registration_seconds) for r in self.providers.values()
            },
            "features": {
                r.name: r.state(now, settings.feature_registration_seconds) for r in self.features.values()
            },
            "vaults": [v.to_json(now) for v in self.vaults.values()],
            "deleted_vaults": [v.deleted_json(iso) for v in self.deleted_vaults.values()],
            "role_assignments": [
                {**ra.to_json(self.subscription_id, iso), "roleName": ra.role.name}
                for ra in self.role_assignments.values()
            ],
            "deployments": [d.to_json(now) for d in self.deployments.values()],
            "enterprise_policies": [
                {**self.policy_json(p), "principalIdInternal": p.principal_id} for p in self.policies.values()
            ],
        }

    # --- interface used by keyvault and bap -------------------------------------------
    def find_vault(self, name: str) -> Vault | None:
        """The live (not soft-deleted) vault with this name, case-insensitive."""
        return self.vaults.get(name.lower())

    def find_vault_by_id(self, resource_id: str) -> Vault | None:
        """The live vault with this ARM id, case-insensitive."""
        name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        vault = self.find_vault(name)
        return vault if vault is not None and vault.id.lower() == resource_id.rstrip("/").lower() else None

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

    def has_action(self, principal_oid: str, scope: str, action: str) -> bool:
        """Whether a role assignment at scope or above grants the control-plane action."""
        return any(ra.role.allows(action) for ra in self._assignments_covering(principal_oid, scope))

    def has_data_action(self, principal_oid: str, scope: str, data_action: str) -> bool:
        """Whether a role assignment at scope or above grants the data action."""
        return any(
            ra.role.allows_data(data_action) for ra in self._assignments_covering(principal_oid, scope)
        )

    # --- authorization ------------------------------------------------------------------
    def _assignments_covering(self, principal_oid: str, scope: str) -> list[RoleAssignment]:
        oid = principal_oid.lower()
        return [
            ra
            for ra in self.role_assignments.values()
            if ra.principal_id.lower() == oid and scope_covers(ra.scope, scope)
        ]

    def authorize(self, principal_oid: str, scope: str, action: str) -> None:
        """A 403 AuthorizationFailed unless the principal may perform action on scope."""
        if not self.has_action(principal_oid, scope, action):
            raise errors.authorization_failed(principal_oid, action, scope)

    def check_subscription(self, subscription_id: str) -> None:
        """A 404 SubscriptionNotFound for any other subscription id."""
        if subscription_id.lower() != self.subscription_id.lower():
            raise errors.subscription_not_found(subscription_id)

    def subscription_scope(self) -> str:
        """/subscriptions/{sub}."""
        return f"/subscriptions/{self.subscription_id}"

    def rg_scope(self, name: str) -> str:
        """/subscriptions/{sub}/resourceGroups/{rg} with the group's own casing when it exists."""
        rg = self.resource_groups.get(name.lower())
        return f"{self.subscription_scope()}/resourceGroups/{rg.name if rg else name}"

    # --- resource groups ----------------------------------------------------------------
    def get_resource_group(self, name: str) -> ResourceGroup:
        """The group, or 404 ResourceGroupNotFound."""
        rg = self.resource_groups.get(name.lower())
        if rg is None:
            raise errors.resource_group_not_found(name)
        return rg

    def put_resource_group(self, name: str, body: dict[str, Any]) -> tuple[ResourceGroup, bool]:
        """Create or update a group; returns (group, created)."""
        location = body.get("location") if isinstance(body, dict) else None
        if not location:
            raise SimError(400, "LocationRequired", "The location property is required for this definition.")
        existing = self.resource_groups.get(name.lower())
        if existing is not None:
            if existing.location.replace(" ", "").lower() != str(location).replace(" ", "").lower():
                raise SimError(
                    409,
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{location}'. The Resource group already exists in "
                    "location "
                    f"'{existing.location}'.",
                )
            if "tags" in body:
                existing.tags = dict(body.get("tags") or {})
            return existing, False
        if len(name) > 90 or name.endswith("."):
            raise SimError(
                400,
                "InvalidResourceGroup",
                f"The provided resource group name '{name}' has these invalid characters or length.",
            )
        rg = ResourceGroup(name, str(location), dict(body.get("tags") or {}))
        self.resource_groups[name.lower()] = rg
        return rg, True

    def delete_resource_group(self, name: str) -> AsyncOperation:
        """Delete a group and what is in it; returns the operation tracked by Location."""
        rg = self.get_resource_group(name)
        now = self.now()
        op = self._new_operation("resourceGroupDelete", self.rg_scope(rg.name), now, now)
        in_group = [p for p in self.policies.values() if p.resource_group.lower() == rg.name.lower()]
        for policy in in_group:
            if self._linked(policy):
                op.error = self._delete_not_allowed(policy).body()["error"]
                return op
        for policy in in_group:
            self._remove_policy(policy)
        for vault in [v for v in self.vaults.values() if v.resource_group.lower() == rg.name.lower()]:
            self.delete_vault(vault.resource_group, vault.name)
        for key in [k for k in self.deployments if k[0] == rg.name.lower()]:
            del self.deployments[key]
        del self.resource_groups[rg.name.lower()]
        return op

    # --- providers and features ----------------------------------------------------------
    def provider(self, namespace: str) -> Registration:
        """A provider registration, or 404 InvalidResourceNamespace."""
        reg = self.providers.get(namespace.lower())
        if reg is None:
            raise errors.invalid_namespace(namespace)
        return reg

    def provider_state(self, namespace: str) -> str:
        """NotRegistered, Registering or Registered."""
        reg = self.provider(namespace)
        return reg.state(self.now(), self.tenant.settings.provider_registration_seconds)

    def register_provider(self, namespace: str) -> Registration:
        """Start registration (no-op when registered or registering)."""
        reg = self.provider(namespace)
        if reg.started_at is None and reg.initial_state != "Registered":
            reg.started_at = self.now()
        return reg

    def provider_json(self, namespace: str) -> dict[str, Any]:
        """The Provider resource."""
        reg = self.provider(namespace)
        types = _PROVIDERS.get(reg.name, [])
        return {
            "id": f"{self.subscription_scope()}/providers/{reg.name}",
            "namespace": reg.name,
            "registrationState": self.provider_state(reg.name),
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [
                {
                    "resourceType": t["resourceType"],
                    "locations": list(t["locations"]),
                    "apiVersions": list(t["apiVersions"]),
                    "capabilities": "None",
                }
                for t in types
            ],
        }

    def feature(self, namespace: str, feature: str) -> Registration:
        """A feature registration, or 404 FeatureNotFound."""
        reg = self.features.get(f"{namespace}/{feature}".lower())
        if reg is None:
            raise SimError(404, "FeatureNotFound", f"The feature '{feature}' could not be found.")
        return reg

    def register_feature(self, namespace: str, feature: str) -> Registration:
        """Start a feature registration."""
        reg = self.feature(namespace, feature)
        if reg.started_at is None and reg.initial_state != "Registered":
            reg.started_at = self.now()
        return reg

    def feature_json(self, namespace: str, feature: str) -> dict[str, Any]:
        """The FeatureResult resource."""
        reg = self.feature(namespace, feature)
        ns, name = reg.name.split("/", 1)
        return {
            "id": f"{self.subscription_scope()}/providers/Microsoft.Features/providers/{ns}/features/{name}",
            "name": reg.name,
            "type": "Microsoft.Features/providers/features",
            "properties": {"state": reg.state(self.now(), self.tenant.settings.feature_registration_seconds)},
        }

    # --- vaults -------------------------------------------------------------------------
    def _vault_uri(self, name: str) -> str:
        uri = self.tenant.allocate_vault_uri(name)
        return uri if uri.endswith("/") else uri + "/"

    def get_vault(self, resource_group: str, name: str) -> Vault:
        """A live vault in this group, or 404 ResourceNotFound."""
        self.get_resource_group(resource_group)
        vault = self.vaults.get(name.lower())
        if vault is None or vault.resource_group.lower() != resource_group.lower():
            raise errors.resource_not_found("Microsoft.KeyVault/vaults", name, resource_group)
        return vault

    def create_or_update_vault(
        self, resource_group: str, name: str, body: Any
    ) -> tuple[Vault, bool, AsyncOperation]:
        """PUT a vault; returns (vault, created, operation)."""
        rg = self.get_resource_group(resource_group)
        if not isinstance(body, dict):
            raise SimError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        props = body.get("properties")
        if not isinstance(props, dict):
            raise SimError(400, "BadRequest", "The parameter 'properties' is required.")
        location = body.get("location")
        if not location:
            raise SimError(400, "LocationRequired", "The location property is required for this definition.")
        now = self.now()
        existing = self.vaults.get(name.lower())
        if existing is not None and existing.resource_group.lower() != resource_group.lower():
            raise SimError(
                409,
                "VaultAlreadyExists",
                f"The vault name '{name}' is already in use. Vault names are globally unique so it is "
                "possible "
                "that the name is already taken. If you are sure that the vault name was not taken then it "
                "is "
                "possible that a vault with the same name was recently deleted but not purged after being "
                "placed in a recoverable state.",
            )
        create_mode = str(props.get("createMode") or "default").lower()
        if existing is None:
            validate_vault_name(name)
            deleted = self.deleted_vaults.get(name.lower())
            if deleted is not None:
                if create_mode != "recover":
                    raise SimError(
                        409,
                        "ConflictError",
                        "A vault with the same name already exists in deleted state. You need to either "
                        "recover or "
                        "purge existing key vault. Follow this link "
                        "https://go.microsoft.com/fwlink/?linkid=2149745 "
                        "for more information on soft delete.",
                    )
                return self._recover_vault(deleted, rg.name, now)
            if create_mode == "recover":
                raise SimError(
                    404,
                    "DeletedVaultNotFound",
                    f"The deleted vault '{name}' could not be found in subscription "
                    f"'{self.subscription_id}'.",
                )
            vault = Vault(
                name=name,
                subscription_id=self.subscription_id,
                resource_group=rg.name,
                location=str(location).replace(" ", "").lower(),
                tenant_id="",
                created_at=now,
                ready_at=now + self.tenant.settings.vault_create_seconds,
            )
            props = {"enableSoftDelete": True, "softDeleteRetentionInDays": 90, **props}
            apply_properties(vault, props, creating=True, default_tenant=self.tenant.tenant_id)
            vault.tags = dict(body.get("tags") or {})
            vault.vault_uri = self._vault_uri(name)
            self.vaults[name.lower()] = vault
            return vault, True, self._new_operation("vault", vault.id, now, vault.ready_at)
        apply_properties(existing, props, creating=False, default_tenant=self.tenant.tenant_id)
        if "tags" in body:
            existing.tags = dict(body.get("tags") or {})
        return existing, False, self._new_operation("vault", existing.id, now, now)

    def _recover_vault(
        self, vault: Vault, resource_group: str, now: float
    ) -> tuple[Vault, bool, AsyncOperation]:
        del self.deleted_vaults[vault.name.lower()]
        vault.deleted, vault.deleted_at, vault.scheduled_purge_at = False, None, None
        vault.resource_group = resource_group
        vault.ready_at = now + self.tenant.settings.vault_create_seconds
        self.vaults[vault.name.lower()] = vault
        return vault, True, self._new_operation("vault", vault.id, now, vault.ready_at)

    def update_vault(self, resource_group: str, name: str, body: Any) -> Vault:
        """PATCH a vault."""
        vault = self.get_vault(resource_group, name)
        if not isinstance(body, dict):
            raise SimError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        apply_properties(
            vault, body.get("properties") or {}, creating=False, default_tenant=self.tenant.tenant_id
        )
        if "tags" in body:
            vault.tags = dict(body.get("tags") or {})
        return vault

    def update_vault_access_policy(self, resource_group: str, name: str, kind: str, body: Any) -> Vault:
        """accessPolicies/{add|replace|remove}."""
        vault = self.get_vault(resource_group, name)
        entries = ((body or {}).get("properties") or {}).get("accessPolicies")
        if not isinstance(entries, list):
            raise SimError(400, "BadRequest", "The parameter 'properties.accessPolicies' is required.")
        parsed = [AccessPolicyEntry.from_json(e, vault.tenant_id) for e in entries]
        update_access_policies(vault, kind, parsed)
        return vault

    def delete_vault(self, resource_group: str, name: str) -> bool:
        """Delete a vault (soft delete when enabled); False when there was none."""
        try:
            vault = self.get_vault(resource_group, name)
        except SimError as err:
            if err.code == "ResourceGroupNotFound":
                raise
            return False
        del self.vaults[vault.name.lower()]
        if vault.enable_soft_delete:
            now = self.now()
            vault.deleted, vault.deleted_at = True, now
            vault.scheduled_purge_at = now + vault.soft_delete_retention_days * 86400
            self.deleted_vaults[vault.name.lower()] = vault
        else:
            self._purge_storage(vault.name)
        return True

    def get_deleted_vault(self, location: str, name: str) -> Vault:
        """A soft-deleted vault, or 404 DeletedVaultNotFound."""
        vault = self.deleted_vaults.get(name.lower())
        if vault is None or vault.location.lower() != location.replace(" ", "").lower():
            raise SimError(
                404,
                "DeletedVaultNotFound",
                f"The deleted vault '{name}' could not be found in location '{location}' of subscription "
                f"'{self.subscription_id}'.",
            )
        return vault

    def purge_deleted_vault(self, location: str, name: str) -> AsyncOperation:
        """Purge a soft-deleted vault; refused under purge protection inside the retention period."""
        vault = self.get_deleted_vault(location, name)
        now = self.now()
        if (
            vault.enable_purge_protection
            and vault.scheduled_purge_at is not None
            and now < vault.scheduled_purge_at
        ):
            raise SimError(
                409,
                "MethodNotAllowed",
                f"Operation 'DeletedVaultPurge' is not allowed. The vault '{vault.name}' has purge "
                "protection enabled "
                f"and can only be purged after its scheduled purge date {iso(vault.scheduled_purge_at)}.",
            )
        self._purge(vault.name.lower())
        return self._new_operation("purge", vault.deleted_id, now, now)

    def _purge(self, key: str) -> None:
        vault = self.deleted_vaults.pop(key, None)
        if vault is not None:
            self._purge_storage(vault.name)

    def _purge_storage(self, name: str) -> None:
        self.tenant.release_vault_uri(name)
        self.peers.drop_vault_keys(name)

    # --- role assignments ---------------------------------------------------------------
    def _add_assignment(
        self, scope: str, role: RoleDefinition, principal_oid: str, name: str | None
    ) -> RoleAssignment:
        ra = RoleAssignment(
            name=name or str(uuid.uuid4()),
            scope=scope.rstrip("/"),
            role=role,
            principal_id=principal_oid,
            created_at=self.now(),
        )
        self.role_assignments[ra.id.lower()] = ra
        return ra

    def check_scope_exists(self, scope: str) -> None:
        """404 for a scope under another subscription, a missing group or a missing vault/policy."""
        parts = scope.strip("/").split("/")
        if len(parts) < 2 or parts[0].lower() != "subscriptions":
            raise SimError(400, "InvalidScope", f"The scope '{scope}' is not valid for this operation.")
        self.check_subscription(parts[1])
        if len(parts) >= 4 and parts[2].lower() == "resourcegroups":
            self.get_resource_group(parts[3])
            lowered = scope.rstrip("/").lower()
            if "/providers/microsoft.keyvault/vaults/" in lowered and self.find_vault_by_id(scope) is None:
                raise errors.resource_not_found("Microsoft.KeyVault/vaults", parts[-1], parts[3])
            if f"/providers/{POLICY_TYPE.lower()}/" in lowered and self.find_policy_by_id(scope) is None:
                raise errors.resource_not_found(POLICY_TYPE, parts[-1], parts[3])

    def create_role_assignment(
        self, scope: str, name: str, body: Any, caller_oid: str | None
    ) -> tuple[RoleAssignment, bool]:
        """PUT a role assignment; returns (assignment, created)."""
        try:
            uuid.UUID(name)
        except ValueError as exc:
            raise SimError(
                400,
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
            ) from exc
        props = (body or {}).get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict) or not props.get("roleDefinitionId") or not props.get("principalId"):
            raise SimError(
                400,
                "InvalidRequestContent",
                "The role assignment must have properties.roleDefinitionId and properties.principalId.",
            )
        self.check_scope_exists(scope)
        role = resolve_role(str(props["roleDefinitionId"]))
        if role is None:
            raise SimError(
                400,
                "RoleDefinitionDoesNotExist",
                "The specified role definition with ID "
                f"'{str(props['roleDefinitionId']).rsplit('/', 1)[-1]}' does "
                "not exist.",
            )
        principal = str(props["principalId"])
        identity = self.tenant.identities.by_object_id(principal)
        if identity is None or not self._principal_visible(identity):
            raise SimError(
                400,
                "PrincipalNotFound",
                f"Principal {principal.replace('-', '')} does not exist in the directory "
                f"{self.tenant.tenant_id}. "
                "Check that you have the correct principal ID. If you are creating this principal and then "
                "immediately assigning a role, this error might be related to a replication delay.",
            )
        scope = scope.rstrip("/")
        key = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}".lower()
        same_name = self.role_assignments.get(key)
        if same_name is not None:
            if same_name.principal_id.lower() != principal.lower() or same_name.role is not role:
                raise SimError(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
            return same_name, False
        for ra in self.role_assignments.values():
            if (
                ra.principal_id.lower() == principal.lower()
                and ra.role is role
                and ra.scope.lower() == scope.lower()
            ):
                raise SimError(409, "RoleAssignmentExists", "The role assignment already exists.")
        ra = self._add_assignment(scope, role, principal, name)
        ra.principal_type = str(props.get("principalType") or self._principal_type(identity))
        ra.description = props.get("description")
        ra.created_by = caller_oid
        return ra, True

    def _principal_type(self, identity: Identity) -> str:
        return "User" if identity.kind == "User" else "ServicePrincipal"

    def _principal_visible(self, identity: Identity) -> bool:
        """A policy's managed identity is not in the directory until its replication delay passed."""
        if identity.kind != "ManagedIdentity":
            return True
        owner = next((p for p in self.policies.values() if p.principal_id == identity.object_id), None)
        return owner is None or owner.identity_visible(self.now())

    def get_role_assignment(self, scope: str, name: str) -> RoleAssignment:
        """An assignment, or 404 RoleAssignmentNotFound."""
        key = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}".lower()
        ra = self.role_assignments.get(key)
        if ra is None:
            raise SimError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return ra

    def delete_role_assignment(self, scope: str, name: str) -> RoleAssignment | None:
        """Remove an assignment; None when there was none."""
        key = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}".lower()
        return self.role_assignments.pop(key, None)

    def list_role_assignments(self, scope: str, filter_expr: str | None) -> list[RoleAssignment]:
        """Assignments at, above or below scope, narrowed by atScope(), principalId eq or assignedTo()."""
        from simulator.arm.filters import parse_assignment_filter

        at_scope, principal, role_id = parse_assignment_filter(filter_expr)
        out = []
        for ra in self.role_assignments.values():
            above = scope_covers(ra.scope, scope)
            below = scope_covers(scope, ra.scope)
            if not (above or (below and not at_scope)):
                continue
            if principal is not None and ra.principal_id.lower() != principal.lower():
                continue
            if role_id is not None and ra.role.guid != role_id.rsplit("/", 1)[-1].lower():
                continue
            out.append(ra)
        return out

    def role_definitions(self, filter_expr: str | None) -> list[RoleDefinition]:
        """Built-in roles, optionally filtered by `roleName eq '...'`."""
        from simulator.arm.filters import parse_role_name_filter

        wanted = parse_role_name_filter(filter_expr)
        return [r for r in BUILTIN_ROLES if wanted is None or r.name.lower() == wanted.lower()]

    # --- enterprise policies ------------------------------------------------------------
    def policy_id(self, resource_group: str, name: str) -> str:
        """The ARM id a policy in this group would have."""
        return f"{self.rg_scope(resource_group)}/providers/{POLICY_TYPE}/{name}"

    def require_provider_registered(self) -> None:
        """409 MissingSubscriptionRegistration unless Microsoft.PowerPlatform is Registered."""
        if self.provider_state(PP_NAMESPACE) != "Registered":
            raise errors.missing_registration(PP_NAMESPACE)

    def get_policy(self, resource_group: str, name: str) -> EnterprisePolicy:
        """A policy, or 404 ResourceNotFound."""
        self.get_resource_group(resource_group)
        policy = self.find_policy_by_id(self.policy_id(resource_group, name))
        if policy is None:
            raise errors.resource_not_found(POLICY_TYPE, name, resource_group)
        return policy

    def policy_json(self, policy: EnterprisePolicy) -> dict[str, Any]:
        """The EnterprisePolicy resource with its derived healthStatus."""
        return policy.to_json(self.now(), self.peers.policy_health_status(policy), iso)

    def _linked(self, policy: EnterprisePolicy) -> list[str]:
        return list(self.peers.environments_linked_to(policy.system_id) or [])

    def _delete_not_allowed(self, policy: EnterprisePolicy) -> SimError:
        count = len(self._linked(policy))
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
        self.get_resource_group(resource_group)
        self.require_provider_registered()
        spec = parse_policy_body(body)
        existing = self.find_policy_by_id(self.policy_id(resource_group, name))
        if existing is None:
            return self._create_policy(resource_group, name, spec, caller_oid), True
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
            linked = self._linked(policy)
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
        policy.updated_at = self.now()
        if spec.identity_type != policy.identity_type:
            policy.identity_type = spec.identity_type
            if spec.identity_type == "None" and policy.principal_id:
                self.tenant.identities.remove(policy.principal_id)
                policy.principal_id = None
            elif spec.identity_type == "SystemAssigned" and policy.principal_id is None:
                policy.principal_id = self._new_policy_identity(policy.name, None)
                policy.identity_visible_at = self.now() + self.tenant.settings.policy_identity_delay_seconds

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

    def _create_policy(
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
        now = self.now()
        rg = self.get_resource_group(resource_group)
        policy = EnterprisePolicy(
            name=name,
            subscription_id=self.subscription_id,
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
        self.get_resource_group(resource_group)
        policy = self.find_policy_by_id(self.policy_id(resource_group, name))
        if policy is None:
            return False
        if self._linked(policy):
            raise self._delete_not_allowed(policy)
        self._remove_policy(policy)
        return True

    def _remove_policy(self, policy: EnterprisePolicy) -> None:
        self.policies.pop(policy.id.lower(), None)
        if policy.principal_id:
            self.tenant.identities.remove(policy.principal_id)

    # --- deployments --------------------------------------------------------------------
    def get_deployment(self, resource_group: str, name: str) -> Deployment:
        """A deployment, or 404 DeploymentNotFound."""
        self.get_resource_group(resource_group)
        deployment = self.deployments.get((resource_group.lower(), name.lower()))
        if deployment is None:
            raise SimError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
        return deployment

    def validate_deployment(self, resource_group: str, body: Any) -> TemplatePlan:
        """Check a deployment body; raises SimError 400 InvalidTemplate(-ish) when it cannot run."""
        self.get_resource_group(resource_group)
        template, parameters, _mode = self._deployment_parts(body)
        try:
            return plan(template, parameters)
        except TemplateError as err:
            raise SimError(400, err.code, err.message) from err

    def _deployment_parts(self, body: Any) -> tuple[Any, Any, str]:
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise SimError(400, "InvalidRequestContent", "The request content must have 'properties'.")
        if "templateLink" in props or "parametersLink" in props:
            raise SimError(
                400,
                "UnsupportedTemplateFeature",
                "templateLink and parametersLink are not supported by the "
                "simulator; send the template inline.",
            )
        if "template" not in props:
            raise SimError(400, "InvalidDeployment", "The deployment must have 'properties.template'.")
        mode = str(props.get("mode") or "Incremental")
        if mode.lower() not in ("incremental", "complete"):
            raise SimError(400, "InvalidDeploymentMode", f"The deployment mode '{mode}' is not valid.")
        return props["template"], props.get("parameters") or {}, mode

    def create_deployment(
        self, resource_group: str, name: str, body: Any, caller_oid: str
    ) -> tuple[Deployment, bool]:
        """PUT a deployment that executes at tick after deployment_seconds; returns (deployment, created)."""
        rg = self.get_resource_group(resource_group)
        template, parameters, mode = self._deployment_parts(body)
        key = (rg.name.lower(), name.lower())
        previous = self.deployments.get(key)
        now = self.now()
        if previous is not None and previous.state in ("Accepted", "Running"):
            raise SimError(
                409,
                "DeploymentActive",
                f"Unable to edit or replace deployment '{name}': previous deployment from "
                f"'{iso(previous.started_at)}' is still active (current provisioning state is "
                f"'{previous.provisioning_state(now)}'). Please see https://aka.ms/arm-deploy for usage "
                "details.",
            )
        deployment = Deployment(
            name=name,
            subscription_id=self.subscription_id,
            resource_group=rg.name,
            template=template if isinstance(template, dict) else {},
            parameters=parameters if isinstance(parameters, dict) else {},
            mode=mode[:1].upper() + mode[1:].lower(),
            caller_oid=caller_oid,
            started_at=now,
            done_at=now + self.tenant.settings.deployment_seconds,
            correlation_id=str(uuid.uuid4()),
            operation_id=uuid.uuid4().hex,
        )
        try:
            deployment.plan = plan(template, parameters)
            if deployment.mode == "Complete":
                raise TemplateError(
                    "UnsupportedDeploymentMode",
                    "The simulator only supports deployments in 'Incremental' mode.",
                )
        except TemplateError as err:
            deployment.plan, deployment.plan_error = None, err
        self.deployments[key] = deployment
        self.operations[deployment.operation_id] = AsyncOperation(
            deployment.operation_id, "deployment", deployment.id, now, deployment.done_at
        )
        return deployment, previous is None

    def _execute(self, deployment: Deployment, now: float) -> None:
        """Run the plan: create or update each policy as the caller; record outputs or the failure."""
        deployment.finished_at = now
        if deployment.plan_error is not None:
            deployment.state = "Failed"
            deployment.error = errors.error_body(deployment.plan_error.code, deployment.plan_error.message)
            return
        assert deployment.plan is not None
        details: list[dict[str, Any]] = []
        for resource in deployment.plan.resources:
            resource_id = self.policy_id(deployment.resource_group, resource.name)
            try:
                if not self.has_action(deployment.caller_oid, resource_id, f"{POLICY_TYPE}/write"):
                    raise errors.authorization_failed(
                        deployment.caller_oid, f"{POLICY_TYPE}/write", resource_id
                    )
                if self.provider_state(PP_NAMESPACE) != "Registered":
                    raise errors.missing_registration(PP_NAMESPACE)
                self.put_policy(
                    deployment.resource_group, resource.name, resource.body, deployment.caller_oid
                )
                deployment.output_resources.append(resource_id)
            except SimError as err:
                detail = err.body()["error"]
                detail.setdefault("target", resource_id)
                details.append(detail)
        if details:
            deployment.state = "Failed"
            deployment.error = errors.error_body(
                "DeploymentFailed",
                "At least one resource deployment operation failed. Please list deployment operations for "
                "details. "
                "Please see https://aka.ms/arm-deployment-operations for usage details.",
                details,
            )
            return
        deployment.state = "Succeeded"
        deployment.outputs = deployment.plan.outputs

    def list_deployments(self, resource_group: str) -> list[Deployment]:
        """The group's deployments."""
        rg = self.get_resource_group(resource_group)
        return [d for (g, _), d in self.deployments.items() if g == rg.name.lower()]

    # --- operations ---------------------------------------------------------------------
    def _new_operation(self, kind: str, resource_id: str, started: float, done: float) -> AsyncOperation:
        op = AsyncOperation(uuid.uuid4().hex, kind, resource_id, started, done)
        self.operations[op.id] = op
        return op

    def operation_status(self, op_id: str) -> tuple[AsyncOperation, str, dict[str, Any] | None]:
        """(operation, status, error) with status InProgress, Succeeded or Failed."""
        op = self.operations.get(op_id)
        if op is None:
            raise SimError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        now = self.now()
        if op.kind == "deployment":
            deployment = next((d for d in self.deployments.values() if d.operation_id == op_id), None)
            if deployment is None:
                return (
                    op,
                    "Canceled",
                    errors.error_body("DeploymentNotFound", "The deployment no longer exists."),
                )
            state = deployment.provisioning_state(now)
            if state in ("Succeeded", "Failed"):
                return op, state, deployment.error
            return op, "Running", None
        if op.error is not None:
            return op, "Failed", op.error
        return op, ("Succeeded" if now >= op.done_at else "InProgress"), None
