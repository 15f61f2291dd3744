"""Built-in role definitions, role assignments, permission matching with scope inheritance, the RbacBackend."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from simulator.arm import errors
from simulator.arm.filters import parse_assignment_filter, parse_role_name_filter
from simulator.core.errors import SimError
from simulator.core.identities import Identity
from simulator.core.tenant import Tenant

ROLE_DEFINITIONS_PATH = "/providers/Microsoft.Authorization/roleDefinitions/"

_KV_MGMT_READ = [
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
]


@dataclass(frozen=True)
class RoleDefinition:
    """A built-in role: the same GUID and permissions in every tenant."""

    guid: str
    name: str
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def definition_id(self, subscription_id: str) -> str:
        """The subscription-scoped roleDefinitionId ARM returns."""
        return f"/subscriptions/{subscription_id}{ROLE_DEFINITIONS_PATH}{self.guid}"

    def allows(self, action: str) -> bool:
        """Whether the role grants a control-plane action."""
        return _any_match(self.actions, action) and not _any_match(self.not_actions, action)

    def allows_data(self, data_action: str) -> bool:
        """Whether the role grants a data action."""
        return _any_match(self.data_actions, data_action) and not _any_match(
            self.not_data_actions, data_action
        )

    def to_json(self, subscription_id: str) -> dict[str, Any]:
        """The RoleDefinition resource."""
        return {
            "id": self.definition_id(subscription_id),
            "name": self.guid,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": self.name,
                "type": "BuiltInRole",
                "description": self.description,
                "assignableScopes": ["/"],
                "permissions": [
                    {
                        "actions": list(self.actions),
                        "notActions": list(self.not_actions),
                        "dataActions": list(self.data_actions),
                        "notDataActions": list(self.not_data_actions),
                    }
                ],
                "createdOn": "2015-02-02T21:55:09.8806423Z",
                "updatedOn": "2024-01-01T00:00:00.0000000Z",
            },
        }


BUILTIN_ROLES: tuple[RoleDefinition, ...] = (
    RoleDefinition(
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "Owner",
        "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        ("*",),
    ),
    RoleDefinition(
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "Contributor",
        "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        ("*",),
        (
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ),
    ),
    RoleDefinition(
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Reader",
        "View all resources, but does not allow you to make any changes.",
        ("*/read",),
    ),
    RoleDefinition(
        "18d7d88d-d35e-4fb5-a5c3-7773c6a72089",
        "User Access Administrator",
        "Lets you manage user access to Azure resources.",
        ("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
    ),
    RoleDefinition(
        "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        "Key Vault Administrator",
        "Perform all data plane operations on a key vault and all objects in it, including certificates, "
        "keys, "
        "and secrets. Cannot manage key vault resources or manage role assignments. Only works for key "
        "vaults "
        "that use the 'Azure role-based access control' permission model.",
        tuple(_KV_MGMT_READ),
        data_actions=("Microsoft.KeyVault/vaults/*",),
    ),
    RoleDefinition(
        "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
        "Key Vault Crypto Officer",
        "Perform any action on the keys of a key vault, except manage permissions. Only works for key vaults "
        "that use the 'Azure role-based access control' permission model.",
        tuple(_KV_MGMT_READ),
        data_actions=("Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"),
    ),
    RoleDefinition(
        "e147488a-f6f5-4113-8e2d-b22465e65bf6",
        "Key Vault Crypto Service Encryption User",
        "Read metadata of keys and perform wrap/unwrap operations. Only works for key vaults that use the "
        "'Azure role-based access control' permission model.",
        (
            "Microsoft.EventGrid/eventSubscriptions/write",
            "Microsoft.EventGrid/eventSubscriptions/read",
            "Microsoft.EventGrid/eventSubscriptions/delete",
        ),
        data_actions=(
            "Microsoft.KeyVault/vaults/keys/read",
            "Microsoft.KeyVault/vaults/keys/wrap/action",
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
        ),
    ),
    RoleDefinition(
        "12338af0-0e69-4776-bea7-57ae8d297424",
        "Key Vault Crypto User",
        "Perform cryptographic operations using keys. Only works for key vaults that use the "
        "'Azure role-based access control' permission model.",
        (),
        data_actions=(
            "Microsoft.KeyVault/vaults/keys/read",
            "Microsoft.KeyVault/vaults/keys/update/action",
            "Microsoft.KeyVault/vaults/keys/backup/action",
            "Microsoft.KeyVault/vaults/keys/encrypt/action",
            "Microsoft.KeyVault/vaults/keys/decrypt/action",
            "Microsoft.KeyVault/vaults/keys/wrap/action",
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
            "Microsoft.KeyVault/vaults/keys/sign/action",
            "Microsoft.KeyVault/vaults/keys/verify/action",
        ),
    ),
    RoleDefinition(
        "21090545-7ca7-4776-b22c-e363652d74d2",
        "Key Vault Reader",
        "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values "
        "such "
        "as secret contents or key material.",
        tuple(_KV_MGMT_READ),
        data_actions=(
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
    ),
    RoleDefinition(
        "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets User",
        "Read secret contents.",
        (),
        data_actions=(
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
    ),
    RoleDefinition(
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "Key Vault Secrets Officer",
        "Perform any action on the secrets of a key vault, except manage permissions.",
        tuple(_KV_MGMT_READ),
        data_actions=("Microsoft.KeyVault/vaults/secrets/*",),
    ),
    RoleDefinition(
        "a4417e6f-fecd-4de8-b567-7b0420556985",
        "Key Vault Certificates Officer",
        "Perform any action on the certificates of a key vault, except manage permissions.",
        tuple(_KV_MGMT_READ),
        data_actions=(
            "Microsoft.KeyVault/vaults/certificatecas/*",
            "Microsoft.KeyVault/vaults/certificates/*",
            "Microsoft.KeyVault/vaults/certificatecontacts/write",
        ),
    ),
)

_BY_GUID = {r.guid: r for r in BUILTIN_ROLES}
_BY_NAME = {r.name.lower(): r for r in BUILTIN_ROLES}


def role_by_guid(guid: str) -> RoleDefinition | None:
    """A built-in role by its GUID."""
    return _BY_GUID.get(guid.lower())


def role_by_name(name: str) -> RoleDefinition | None:
    """A built-in role by its display name, case-insensitive."""
    return _BY_NAME.get(name.lower())


def resolve_role(ref: str) -> RoleDefinition | None:
    """A built-in role from a name, a GUID or a full roleDefinitionId."""
    guid = ref.rstrip("/").rsplit("/", 1)[-1]
    return role_by_guid(guid) or role_by_name(ref)


@lru_cache(maxsize=512)
def _pattern(spec: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in spec.split("*")) + "$", re.IGNORECASE)


def action_matches(spec: str, action: str) -> bool:
    """Whether an action pattern like 'Microsoft.KeyVault/vaults/*' or '*/read' covers action."""
    return bool(_pattern(spec).match(action))


def _any_match(specs: tuple[str, ...], action: str) -> bool:
    return any(action_matches(spec, action) for spec in specs)


def scope_covers(assignment_scope: str, target: str) -> bool:
    """Whether an assignment at assignment_scope applies to target (the same scope or anything below)."""
    outer = assignment_scope.rstrip("/").lower()
    inner = target.rstrip("/").lower()
    return outer == "" or inner == outer or inner.startswith(outer + "/")


@dataclass
class RoleAssignment:
    """One role assignment: a principal holds a role at a scope."""

    name: str
    scope: str
    role: RoleDefinition
    principal_id: str
    principal_type: str = "ServicePrincipal"
    description: str | None = None
    created_by: str | None = None
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The assignment's ARM id."""
        return f"{self.scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{self.name}"

    def to_json(self, subscription_id: str, iso: Any) -> dict[str, Any]:
        """The RoleAssignment resource; iso formats a timestamp."""
        when = iso(self.created_at)
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "scope": self.scope,
                "roleDefinitionId": self.role.definition_id(subscription_id),
                "principalId": self.principal_id,
                "principalType": self.principal_type,
                "description": self.description,
                "condition": None,
                "conditionVersion": None,
                "createdOn": when,
                "updatedOn": when,
                "createdBy": self.created_by,
                "updatedBy": self.created_by,
                "delegatedManagedIdentityResourceId": None,
            },
        }


class RbacBackend:
    """Role assignments by lower-case assignment id, checked against the built-in role definitions."""

    def __init__(
        self,
        tenant: Tenant,
        check_scope_exists: Callable[[str], None],
        principal_visible: Callable[[Identity], bool],
    ) -> None:
        self.tenant = tenant
        self.check_scope_exists = check_scope_exists
        self.principal_visible = principal_visible
        self.role_assignments: dict[str, RoleAssignment] = {}

    def add_assignment(
        self, scope: str, role: RoleDefinition, principal_oid: str, name: str | None
    ) -> RoleAssignment:
        """Record an assignment (no checks: scenario seeding and the checked PUT both end here)."""
        ra = RoleAssignment(
            name=name or str(uuid.uuid4()),
            scope=scope.rstrip("/"),
            role=role,
            principal_id=principal_oid,
            created_at=self.tenant.now(),
        )
        self.role_assignments[ra.id.lower()] = ra
        return ra

    def has_action(self, principal_oid: str, scope: str, action: str) -> bool:
        """Whether a role assignment at scope or above grants the control-plane action."""
        return any(ra.role.allows(action) for ra in self._assignments_covering(principal_oid, scope))

    def has_data_action(self, principal_oid: str, scope: str, data_action: str) -> bool:
        """Whether a role assignment at scope or above grants the data action."""
        return any(
            ra.role.allows_data(data_action) for ra in self._assignments_covering(principal_oid, scope)
        )

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
        if identity is None or not self.principal_visible(identity):
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
        ra = self.add_assignment(scope, role, principal, name)
        ra.principal_type = str(props.get("principalType") or self._principal_type(identity))
        ra.description = props.get("description")
        ra.created_by = caller_oid
        return ra, True

    def _principal_type(self, identity: Identity) -> str:
        return "User" if identity.kind == "User" else "ServicePrincipal"

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
        wanted = parse_role_name_filter(filter_expr)
        return [r for r in BUILTIN_ROLES if wanted is None or r.name.lower() == wanted.lower()]
