"""ARM state (no HTTP): one backend per concern, composed; what spans backends (scenario, group delete) is here."""

from __future__ import annotations

from typing import Any

from simulator.arm import errors
from simulator.arm.deployments import Deployment, DeploymentBackend
from simulator.arm.groups import ResourceGroup, ResourceGroupBackend
from simulator.arm.operations import AsyncOperation, OperationLog
from simulator.arm.policies import POLICY_TYPE, EnterprisePolicy, PolicyBackend, parse_policy_body
from simulator.arm.providers import Registration, RegistrationBackend
from simulator.arm.rbac import RbacBackend, RoleAssignment, RoleDefinition, resolve_role
from simulator.arm.templates import TemplatePlan
from simulator.arm.timestamps import iso
from simulator.arm.vaults import AccessPolicyEntry, Vault, VaultBackend
from simulator.core.errors import SimError
from simulator.core.ports import ArmPeers
from simulator.core.tenant import Tenant


class ArmState:
    """Resource groups, providers, features, vaults, role assignments, deployments, enterprise policies."""

    def __init__(self, tenant: Tenant, peers: ArmPeers) -> None:
        self.tenant = tenant
        self.peers = peers
        self._operations = OperationLog()
        self._groups = ResourceGroupBackend(tenant)
        self._registrations = RegistrationBackend(tenant)
        self._vaults = VaultBackend(tenant, peers, self._groups, self._operations)
        self._policies = PolicyBackend(
            tenant, peers, self._groups, self._registrations.require_provider_registered
        )
        self._rbac = RbacBackend(tenant, self.check_scope_exists, self._policies.principal_visible)
        self._deployments = DeploymentBackend(
            tenant, self._groups, self._registrations, self._rbac, self._policies, self._operations
        )

    @property
    def subscription_id(self) -> str:
        """The one subscription of the simulated tenant."""
        return self.tenant.subscription_id

    def now(self) -> float:
        """Simulated time."""
        return self.tenant.now()

    # --- the backends' tables ---------------------------------------------------------
    @property
    def resource_groups(self) -> dict[str, ResourceGroup]:
        """Groups by lower-case name."""
        return self._groups.resource_groups

    @property
    def providers(self) -> dict[str, Registration]:
        """Provider registrations by lower-case namespace."""
        return self._registrations.providers

    @property
    def features(self) -> dict[str, Registration]:
        """Feature registrations by lower-case namespace/feature."""
        return self._registrations.features

    @property
    def vaults(self) -> dict[str, Vault]:
        """Live vaults by lower-case name (names are global)."""
        return self._vaults.vaults

    @property
    def deleted_vaults(self) -> dict[str, Vault]:
        """Soft-deleted vaults by lower-case name."""
        return self._vaults.deleted_vaults

    @property
    def role_assignments(self) -> dict[str, RoleAssignment]:
        """Role assignments by lower-case assignment id."""
        return self._rbac.role_assignments

    @property
    def deployments(self) -> dict[tuple[str, str], Deployment]:
        """Deployments by (lower-case group, lower-case name)."""
        return self._deployments.deployments

    @property
    def policies(self) -> dict[str, EnterprisePolicy]:
        """Enterprise policies by lower-case ARM id."""
        return self._policies.policies

    @property
    def operations(self) -> dict[str, AsyncOperation]:
        """Long-running operations by id."""
        return self._operations.operations

    # --- scenario ---------------------------------------------------------------------
    def load(self, scenario: dict[str, Any]) -> None:
        """Seed from scenario sections resource_groups, providers, features, role_assignments, vaults,
        enterprise_policies."""
        self._registrations.load(scenario)
        self._groups.load(scenario)
        for spec in scenario.get("role_assignments") or []:
            principal = self._scenario_principal(spec["principal"])
            role = resolve_role(spec["role"])
            if role is None:
                raise ValueError(f"scenario role_assignments: unknown role {spec['role']!r}")
            self._rbac.add_assignment(
                self._scenario_scope(spec.get("scope", "")), role, principal, spec.get("name")
            )
        for spec in scenario.get("vaults") or []:
            self._vaults.load_vault(spec, self._scenario_principal)
        for spec in scenario.get("enterprise_policies") or []:
            self._load_policy(spec)

    def _scenario_principal(self, ref: str) -> str:
        """The object id of a scenario principal (name, object id or client id)."""
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

    def _load_policy(self, spec: dict[str, Any]) -> None:
        """One scenario policy, with the grants its spec asks for on its vault and policy."""
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
        policy = self._policies.create_policy(
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
            self._rbac.add_assignment(vault.id, role, policy.principal_id, None)
        reader = resolve_role("Reader")
        assert reader is not None
        for name in spec.get("reader_for") or []:
            self._rbac.add_assignment(policy.id, reader, self._scenario_principal(name), None)

    # --- time and dump ------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Settle due deployments and purge soft-deleted vaults whose retention ended."""
        self._deployments.tick(now)
        self._vaults.tick(now)

    def snapshot(self) -> dict[str, Any]:
        """State as JSON."""
        now = self.now()
        return {
            "resource_groups": [rg.to_json(self.subscription_id) for rg in self.resource_groups.values()],
            **self._registrations.snapshot(),
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

    # --- across backends ----------------------------------------------------------------
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

    def operation_status(self, op_id: str) -> tuple[AsyncOperation, str, dict[str, Any] | None]:
        """(operation, status, error) with status InProgress, Succeeded or Failed."""
        op = self._operations.get(op_id)
        if op is None:
            raise SimError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        now = self.now()
        if op.kind == "deployment":
            deployment = self._deployments.by_operation(op_id)
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

    def delete_resource_group(self, name: str) -> AsyncOperation:
        """Delete a group and what is in it; returns the operation tracked by Location."""
        rg = self.get_resource_group(name)
        now = self.now()
        op = self._operations.new("resourceGroupDelete", self.rg_scope(rg.name), now, now)
        in_group = [p for p in self.policies.values() if p.resource_group.lower() == rg.name.lower()]
        for policy in in_group:
            if self._policies.linked(policy):
                op.error = self._policies.delete_not_allowed(policy).body()["error"]
                return op
        for policy in in_group:
            self._policies.remove_policy(policy)
        for vault in [v for v in self.vaults.values() if v.resource_group.lower() == rg.name.lower()]:
            self.delete_vault(vault.resource_group, vault.name)
        for key in [k for k in self.deployments if k[0] == rg.name.lower()]:
            del self.deployments[key]
        del self.resource_groups[rg.name.lower()]
        return op

    # --- ResourceGroupBackend ---
    def check_subscription(self, subscription_id: str) -> None:
        """A 404 SubscriptionNotFound for any other subscription id."""
        return self._groups.check_subscription(subscription_id)

    def subscription_scope(self) -> str:
        """/subscriptions/{sub}."""
        return self._groups.subscription_scope()

    def rg_scope(self, name: str) -> str:
        """/subscriptions/{sub}/resourceGroups/{rg} with the group's own casing when it exists."""
        return self._groups.rg_scope(name)

    def get_resource_group(self, name: str) -> ResourceGroup:
        """The group, or 404 ResourceGroupNotFound."""
        return self._groups.get_resource_group(name)

    def put_resource_group(self, name: str, body: dict[str, Any]) -> tuple[ResourceGroup, bool]:
        """Create or update a group; returns (group, created)."""
        return self._groups.put_resource_group(name, body)

    # --- RegistrationBackend ---
    def provider(self, namespace: str) -> Registration:
        """A provider registration, or 404 InvalidResourceNamespace."""
        return self._registrations.provider(namespace)

    def provider_state(self, namespace: str) -> str:
        """NotRegistered, Registering or Registered."""
        return self._registrations.provider_state(namespace)

    def register_provider(self, namespace: str) -> Registration:
        """Start registration (no-op when registered or registering)."""
        return self._registrations.register_provider(namespace)

    def provider_json(self, namespace: str) -> dict[str, Any]:
        """The Provider resource."""
        return self._registrations.provider_json(namespace)

    def feature(self, namespace: str, feature: str) -> Registration:
        """A feature registration, or 404 FeatureNotFound."""
        return self._registrations.feature(namespace, feature)

    def register_feature(self, namespace: str, feature: str) -> Registration:
        """Start a feature registration."""
        return self._registrations.register_feature(namespace, feature)

    def feature_json(self, namespace: str, feature: str) -> dict[str, Any]:
        """The FeatureResult resource."""
        return self._registrations.feature_json(namespace, feature)

    def require_provider_registered(self) -> None:
        """409 MissingSubscriptionRegistration unless Microsoft.PowerPlatform is Registered."""
        return self._registrations.require_provider_registered()

    # --- VaultBackend ---
    def find_vault(self, name: str) -> Vault | None:
        """The live (not soft-deleted) vault with this name, case-insensitive."""
        return self._vaults.find_vault(name)

    def find_vault_by_id(self, resource_id: str) -> Vault | None:
        """The live vault with this ARM id, case-insensitive."""
        return self._vaults.find_vault_by_id(resource_id)

    def get_vault(self, resource_group: str, name: str) -> Vault:
        """A live vault in this group, or 404 ResourceNotFound."""
        return self._vaults.get_vault(resource_group, name)

    def create_or_update_vault(
        self, resource_group: str, name: str, body: Any
    ) -> tuple[Vault, bool, AsyncOperation]:
        """PUT a vault; returns (vault, created, operation)."""
        return self._vaults.create_or_update_vault(resource_group, name, body)

    def update_vault(self, resource_group: str, name: str, body: Any) -> Vault:
        """PATCH a vault."""
        return self._vaults.update_vault(resource_group, name, body)

    def update_vault_access_policy(self, resource_group: str, name: str, kind: str, body: Any) -> Vault:
        """accessPolicies/{add|replace|remove}."""
        return self._vaults.update_vault_access_policy(resource_group, name, kind, body)

    def vault_network_problem(self, resource_id: str) -> str | None:
        """Why a trusted Microsoft service cannot reach this vault over the network, or None."""
        return self._vaults.vault_network_problem(resource_id)

    def get_connection(self, resource_group: str, name: str, connection: str) -> tuple[Vault, Any]:
        """A private endpoint connection of a vault, or 404."""
        return self._vaults.get_connection(resource_group, name, connection)

    def put_connection(self, resource_group: str, name: str, connection: str, body: Any) -> tuple[Vault, Any]:
        """Create or update a private endpoint connection."""
        return self._vaults.put_connection(resource_group, name, connection, body)

    def delete_connection(self, resource_group: str, name: str, connection: str) -> bool:
        """Remove a private endpoint connection; False when there was none."""
        return self._vaults.delete_connection(resource_group, name, connection)

    def delete_vault(self, resource_group: str, name: str) -> bool:
        """Delete a vault (soft delete when enabled); False when there was none."""
        return self._vaults.delete_vault(resource_group, name)

    def get_deleted_vault(self, location: str, name: str) -> Vault:
        """A soft-deleted vault, or 404 DeletedVaultNotFound."""
        return self._vaults.get_deleted_vault(location, name)

    def purge_deleted_vault(self, location: str, name: str) -> AsyncOperation:
        """Purge a soft-deleted vault; refused under purge protection inside the retention period."""
        return self._vaults.purge_deleted_vault(location, name)

    # --- RbacBackend ---
    def has_action(self, principal_oid: str, scope: str, action: str) -> bool:
        """Whether a role assignment at scope or above grants the control-plane action."""
        return self._rbac.has_action(principal_oid, scope, action)

    def has_data_action(self, principal_oid: str, scope: str, data_action: str) -> bool:
        """Whether a role assignment at scope or above grants the data action."""
        return self._rbac.has_data_action(principal_oid, scope, data_action)

    def authorize(self, principal_oid: str, scope: str, action: str) -> None:
        """A 403 AuthorizationFailed unless the principal may perform action on scope."""
        return self._rbac.authorize(principal_oid, scope, action)

    def create_role_assignment(
        self, scope: str, name: str, body: Any, caller_oid: str | None
    ) -> tuple[RoleAssignment, bool]:
        """PUT a role assignment; returns (assignment, created)."""
        return self._rbac.create_role_assignment(scope, name, body, caller_oid)

    def get_role_assignment(self, scope: str, name: str) -> RoleAssignment:
        """An assignment, or 404 RoleAssignmentNotFound."""
        return self._rbac.get_role_assignment(scope, name)

    def delete_role_assignment(self, scope: str, name: str) -> RoleAssignment | None:
        """Remove an assignment; None when there was none."""
        return self._rbac.delete_role_assignment(scope, name)

    def list_role_assignments(self, scope: str, filter_expr: str | None) -> list[RoleAssignment]:
        """Assignments at, above or below scope, narrowed by atScope(), principalId eq or assignedTo()."""
        return self._rbac.list_role_assignments(scope, filter_expr)

    def role_definitions(self, filter_expr: str | None) -> list[RoleDefinition]:
        """Built-in roles, optionally filtered by `roleName eq '...'`."""
        return self._rbac.role_definitions(filter_expr)

    # --- PolicyBackend ---
    def policy_id(self, resource_group: str, name: str) -> str:
        """The ARM id a policy in this group would have."""
        return self._policies.policy_id(resource_group, name)

    def find_policy_by_id(self, resource_id: str) -> EnterprisePolicy | None:
        """The enterprise policy with this ARM id, case-insensitive."""
        return self._policies.find_policy_by_id(resource_id)

    def find_policy_by_system_id(self, system_id: str) -> EnterprisePolicy | None:
        """The enterprise policy with this systemId, case-insensitive."""
        return self._policies.find_policy_by_system_id(system_id)

    def find_policies_by_name(self, name: str) -> list[EnterprisePolicy]:
        """Every enterprise policy with this name, in any resource group (case-insensitive)."""
        return self._policies.find_policies_by_name(name)

    def get_policy(self, resource_group: str, name: str) -> EnterprisePolicy:
        """A policy, or 404 ResourceNotFound."""
        return self._policies.get_policy(resource_group, name)

    def policy_json(self, policy: EnterprisePolicy) -> dict[str, Any]:
        """The EnterprisePolicy resource with its derived healthStatus."""
        return self._policies.policy_json(policy)

    def put_policy(
        self, resource_group: str, name: str, body: Any, caller_oid: str | None
    ) -> tuple[EnterprisePolicy, bool]:
        """PUT a policy (synchronous); returns (policy, created)."""
        return self._policies.put_policy(resource_group, name, body, caller_oid)

    def patch_policy(self, resource_group: str, name: str, body: Any) -> EnterprisePolicy:
        """PATCH a policy: tags, identity, kind or properties merged into the current content."""
        return self._policies.patch_policy(resource_group, name, body)

    def delete_policy(self, resource_group: str, name: str) -> bool:
        """Delete a policy; refused while environments are linked; False when there was none."""
        return self._policies.delete_policy(resource_group, name)

    # --- DeploymentBackend ---
    def get_deployment(self, resource_group: str, name: str) -> Deployment:
        """A deployment, or 404 DeploymentNotFound."""
        return self._deployments.get_deployment(resource_group, name)

    def validate_deployment(self, resource_group: str, body: Any) -> TemplatePlan:
        """Check a deployment body; raises SimError 400 InvalidTemplate(-ish) when it cannot run."""
        return self._deployments.validate_deployment(resource_group, body)

    def create_deployment(
        self, resource_group: str, name: str, body: Any, caller_oid: str
    ) -> tuple[Deployment, bool]:
        """PUT a deployment that executes at tick after deployment_seconds; returns (deployment, created)."""
        return self._deployments.create_deployment(resource_group, name, body, caller_oid)

    def list_deployments(self, resource_group: str) -> list[Deployment]:
        """The group's deployments."""
        return self._deployments.list_deployments(resource_group)
