"""Microsoft.KeyVault/vaults: the vault resource, its access policies and network rules, the RP's rules and the
VaultBackend."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.arm import errors
from simulator.arm.groups import ResourceGroupBackend
from simulator.arm.operations import AsyncOperation, OperationLog
from simulator.arm.timestamps import iso
from simulator.core.errors import SimError
from simulator.core.ports import ArmPeers
from simulator.core.tenant import Tenant

KEY_PERMISSIONS = (
    "encrypt",
    "decrypt",
    "wrapkey",
    "unwrapkey",
    "sign",
    "verify",
    "get",
    "list",
    "create",
    "update",
    "import",
    "delete",
    "backup",
    "restore",
    "recover",
    "purge",
    "release",
    "rotate",
    "getrotationpolicy",
    "setrotationpolicy",
)
_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
_PERMISSION_KINDS = ("keys", "secrets", "certificates", "storage")
_BYPASS = {"azureservices": "AzureServices", "none": "None"}
_DEFAULT_ACTION = {"allow": "Allow", "deny": "Deny"}
_PUBLIC_ACCESS = {"enabled": "Enabled", "disabled": "Disabled"}
_CONNECTION_STATUS = {s.lower(): s for s in ("Pending", "Approved", "Rejected", "Disconnected")}
PEC_TYPE = "Microsoft.KeyVault/vaults/privateEndpointConnections"


def _known(value: Any, allowed: dict[str, str], prop: str) -> str:
    """A case-insensitive enum value in its canonical spelling, or 400 BadRequest."""
    canonical = allowed.get(str(value).lower()) if isinstance(value, str) else None
    if canonical is None:
        raise SimError(
            400,
            "BadRequest",
            f"The property \"{prop}\" has an invalid value '{value}'. Allowed values are "
            f"{', '.join(repr(v) for v in allowed.values())}.",
        )
    return canonical


def parse_network_acls(value: Any) -> dict[str, Any] | None:
    """REST networkAcls checked and completed with the spec's defaults (bypass AzureServices, defaultAction Allow)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SimError(400, "BadRequest", 'The property "networkAcls" must be an object.')
    ip_rules = value.get("ipRules") or []
    vnet_rules = value.get("virtualNetworkRules") or []
    if not isinstance(ip_rules, list) or not all(isinstance(r, dict) and r.get("value") for r in ip_rules):
        raise SimError(
            400,
            "BadRequest",
            'Every "networkAcls.ipRules" entry needs a "value" (an IPv4 address or CIDR range).',
        )
    if not isinstance(vnet_rules, list) or not all(isinstance(r, dict) and r.get("id") for r in vnet_rules):
        raise SimError(
            400, "BadRequest", 'Every "networkAcls.virtualNetworkRules" entry needs an "id" (a subnet id).'
        )
    return {
        "bypass": _known(value.get("bypass") or "AzureServices", _BYPASS, "networkAcls.bypass"),
        "defaultAction": _known(
            value.get("defaultAction") or "Allow", _DEFAULT_ACTION, "networkAcls.defaultAction"
        ),
        "ipRules": [{"value": str(r["value"])} for r in ip_rules],
        "virtualNetworkRules": [
            {
                "id": str(r["id"]),
                "ignoreMissingVnetServiceEndpoint": bool(r.get("ignoreMissingVnetServiceEndpoint")),
            }
            for r in vnet_rules
        ],
    }


@dataclass
class PrivateEndpointConnection:
    """One private endpoint connection of a vault (the endpoint itself lives in Microsoft.Network, not modelled)."""

    name: str
    private_endpoint_id: str
    status: str = "Approved"
    description: str = ""
    etag: str = ""

    def properties(self) -> dict[str, Any]:
        """The connection's REST properties."""
        return {
            "privateEndpoint": {"id": self.private_endpoint_id},
            "privateLinkServiceConnectionState": {
                "status": self.status,
                "description": self.description,
                "actionsRequired": "None",
            },
            "provisioningState": "Succeeded",
        }


@dataclass
class AccessPolicyEntry:
    """One access-policy entry of a vault."""

    tenant_id: str
    object_id: str
    application_id: str | None = None
    keys: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any], default_tenant: str) -> AccessPolicyEntry:
        """Parse a REST accessPolicies[] element; a 400 when objectId is missing."""
        if not isinstance(data, dict) or not data.get("objectId"):
            raise SimError(400, "BadRequest", "An access policy entry must have an objectId.")
        perms = data.get("permissions") or {}
        return cls(
            tenant_id=data.get("tenantId") or default_tenant,
            object_id=data["objectId"],
            application_id=data.get("applicationId"),
            **{kind: list(perms.get(kind) or []) for kind in _PERMISSION_KINDS},
        )

    def same_principal(self, other: AccessPolicyEntry) -> bool:
        """Whether both entries are for the same tenant, object and application."""
        return (
            self.tenant_id.lower() == other.tenant_id.lower()
            and self.object_id.lower() == other.object_id.lower()
            and (self.application_id or "").lower() == (other.application_id or "").lower()
        )

    def merge(self, other: AccessPolicyEntry) -> None:
        """Add other's permissions to this entry, keeping order and dropping duplicates."""
        for kind in _PERMISSION_KINDS:
            mine: list[str] = getattr(self, kind)
            seen = {p.lower() for p in mine}
            mine.extend(p for p in getattr(other, kind) if p.lower() not in seen)

    def to_json(self) -> dict[str, Any]:
        """The REST accessPolicies[] element."""
        return {
            "tenantId": self.tenant_id,
            "objectId": self.object_id,
            "applicationId": self.application_id,
            "permissions": {kind: list(getattr(self, kind)) for kind in _PERMISSION_KINDS},
        }


@dataclass
class Vault:
    """A key vault (live or soft-deleted)."""

    name: str
    subscription_id: str
    resource_group: str
    location: str
    tenant_id: str
    sku: str = "standard"
    vault_uri: str = ""
    enable_soft_delete: bool = True
    soft_delete_retention_days: int = 90
    enable_purge_protection: bool = False
    enable_rbac_authorization: bool = False
    enabled_for_deployment: bool = False
    enabled_for_disk_encryption: bool = False
    enabled_for_template_deployment: bool = False
    public_network_access: str = "Enabled"
    network_acls: dict[str, Any] | None = None
    private_endpoint_connections: list[PrivateEndpointConnection] = field(default_factory=list)
    access_policies: list[AccessPolicyEntry] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    ready_at: float = 0.0  # provisioningState turns Succeeded at this simulated time
    deleted: bool = False
    deleted_at: float | None = None
    scheduled_purge_at: float | None = None

    @property
    def id(self) -> str:
        """The vault's ARM id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.KeyVault/vaults/{self.name}"
        )

    @property
    def deleted_id(self) -> str:
        """The ARM id of the vault in its soft-deleted form."""
        return (
            f"/subscriptions/{self.subscription_id}/providers/Microsoft.KeyVault/locations/{self.location}"
            f"/deletedVaults/{self.name}"
        )

    def key_permissions_for(self, object_id: str) -> set[str]:
        """Lower-cased key permissions the access policies give object_id ("all" expanded)."""
        granted: set[str] = set()
        for entry in self.access_policies:
            if entry.object_id.lower() == object_id.lower():
                granted |= {p.lower() for p in entry.keys}
        if "all" in granted:
            granted |= set(KEY_PERMISSIONS)
            granted.discard("all")
        return granted

    def service_network_problem(self) -> str | None:
        """Why a trusted Microsoft service (Power Platform) cannot reach this vault over the network, or None."""
        acls = self.network_acls or {}
        if acls.get("bypass", "AzureServices") == "AzureServices":
            return None
        if self.public_network_access == "Disabled":
            blocked = "public network access is Disabled"
        elif acls.get("defaultAction") == "Deny":
            blocked = "its firewall denies by default"
        else:
            return None
        return (
            f"the key vault '{self.name}' cannot be reached: {blocked} and trusted Microsoft services may not "
            "bypass the firewall (networkAcls.bypass is None)"
        )

    def connection_id(self, name: str) -> str:
        """The ARM id of one of its private endpoint connections."""
        return f"{self.id}/privateEndpointConnections/{name}"

    def connection_json(self, connection: PrivateEndpointConnection) -> dict[str, Any]:
        """The PrivateEndpointConnection resource."""
        return {
            "id": self.connection_id(connection.name),
            "name": connection.name,
            "type": PEC_TYPE,
            "location": self.location,
            "etag": connection.etag,
            "properties": connection.properties(),
        }

    def provisioning_state(self, now: float) -> str:
        """RegisteringDns until the create operation settles, then Succeeded."""
        return "Succeeded" if now >= self.ready_at else "RegisteringDns"

    def to_json(self, now: float) -> dict[str, Any]:
        """The Vault resource as ARM returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.KeyVault/vaults",
            "location": self.location,
            "tags": dict(self.tags),
            "properties": {
                "tenantId": self.tenant_id,
                "sku": {"family": "A", "name": self.sku},
                "accessPolicies": [entry.to_json() for entry in self.access_policies],
                "vaultUri": self.vault_uri,
                "enabledForDeployment": self.enabled_for_deployment,
                "enabledForDiskEncryption": self.enabled_for_disk_encryption,
                "enabledForTemplateDeployment": self.enabled_for_template_deployment,
                "enableSoftDelete": self.enable_soft_delete,
                "softDeleteRetentionInDays": self.soft_delete_retention_days,
                "enableRbacAuthorization": self.enable_rbac_authorization,
                "enablePurgeProtection": True if self.enable_purge_protection else None,
                "networkAcls": self.network_acls,
                "publicNetworkAccess": self.public_network_access,
                "provisioningState": self.provisioning_state(now),
                "privateEndpointConnections": [
                    {"id": self.connection_id(c.name), "etag": c.etag, "properties": c.properties()}
                    for c in self.private_endpoint_connections
                ],
            },
        }

    def deleted_json(self, iso: Any) -> dict[str, Any]:
        """The DeletedVault resource; iso formats a timestamp."""
        return {
            "id": self.deleted_id,
            "name": self.name,
            "type": "Microsoft.KeyVault/deletedVaults",
            "properties": {
                "vaultId": self.id,
                "location": self.location,
                "deletionDate": iso(self.deleted_at or 0.0),
                "scheduledPurgeDate": iso(self.scheduled_purge_at or 0.0),
                "tags": dict(self.tags),
                "purgeProtectionEnabled": self.enable_purge_protection,
            },
        }


def validate_vault_name(name: str) -> None:
    """A 400 VaultNameNotValid unless the name follows Key Vault's rules."""
    if not _VAULT_NAME.match(name):
        raise SimError(
            400,
            "VaultNameNotValid",
            f"The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric "
            "characters. "
            "The name must begin with a letter, end with a letter or digit, and not contain consecutive "
            "hyphens.",
        )


def apply_properties(vault: Vault, props: dict[str, Any], *, creating: bool, default_tenant: str) -> None:
    """Apply REST vault properties (PUT or PATCH), enforcing the one-way switches and ranges."""
    if "tenantId" in props or creating:
        tenant = props.get("tenantId")
        if not tenant:
            raise SimError(400, "BadRequest", "The parameter 'properties.tenantId' is required.")
        vault.tenant_id = tenant
    if "sku" in props or creating:
        sku = props.get("sku") or {}
        name = str(sku.get("name", "")).lower()
        if name not in ("standard", "premium"):
            raise SimError(
                400,
                "BadRequest",
                f"The SKU name '{sku.get('name')}' is invalid. Allowed values are 'standard' and 'premium'.",
            )
        if str(sku.get("family", "A")).upper() != "A":
            raise SimError(
                400, "BadRequest", f"The SKU family '{sku.get('family')}' is invalid. It must be 'A'."
            )
        vault.sku = name
    soft_delete = props.get("enableSoftDelete")
    if soft_delete is not None:
        if vault.enable_soft_delete and not soft_delete and not creating:
            raise SimError(
                400,
                "BadRequest",
                'The property "enableSoftDelete" cannot be set to false. Once soft delete is enabled, it '
                "cannot be "
                "disabled.",
            )
        vault.enable_soft_delete = bool(soft_delete)
    retention = props.get("softDeleteRetentionInDays")
    if retention is not None:
        if not isinstance(retention, int) or isinstance(retention, bool) or not 7 <= retention <= 90:
            raise SimError(
                400,
                "BadRequest",
                f"The property \"softDeleteRetentionInDays\" has an invalid value '{retention}'. It must be "
                "an "
                "integer between 7 and 90.",
            )
        if not creating and retention != vault.soft_delete_retention_days:
            raise SimError(
                400,
                "BadRequest",
                'The property "softDeleteRetentionInDays" can only be set when the vault is created.',
            )
        vault.soft_delete_retention_days = retention
    purge = props.get("enablePurgeProtection")
    if purge is not None:
        if vault.enable_purge_protection and not purge:
            raise SimError(
                400,
                "BadRequest",
                'The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection '
                "for a "
                "vault is an irreversible action.",
            )
        vault.enable_purge_protection = bool(purge)
    if vault.enable_purge_protection and not vault.enable_soft_delete:
        raise SimError(
            400,
            "BadRequest",
            "Purge protection can only be enabled on a vault that has soft delete enabled.",
        )
    for rest_name, attr in (
        ("enableRbacAuthorization", "enable_rbac_authorization"),
        ("enabledForDeployment", "enabled_for_deployment"),
        ("enabledForDiskEncryption", "enabled_for_disk_encryption"),
        ("enabledForTemplateDeployment", "enabled_for_template_deployment"),
    ):
        if props.get(rest_name) is not None:
            setattr(vault, attr, bool(props[rest_name]))
    if props.get("publicNetworkAccess") is not None:
        vault.public_network_access = _known(
            props["publicNetworkAccess"], _PUBLIC_ACCESS, "publicNetworkAccess"
        )
    if "networkAcls" in props:
        vault.network_acls = parse_network_acls(props["networkAcls"])
    if "accessPolicies" in props and props["accessPolicies"] is not None:
        if not isinstance(props["accessPolicies"], list):
            raise SimError(400, "BadRequest", 'The property "accessPolicies" must be an array.')
        vault.access_policies = [
            AccessPolicyEntry.from_json(item, vault.tenant_id or default_tenant)
            for item in props["accessPolicies"]
        ]


def update_access_policies(vault: Vault, kind: str, entries: list[AccessPolicyEntry]) -> None:
    """Apply an accessPolicies/{add|replace|remove} operation."""
    kind = kind.lower()
    if kind not in ("add", "replace", "remove"):
        raise SimError(
            400,
            "BadRequest",
            f"The access policy operation kind '{kind}' is invalid. Allowed values are 'add', 'replace' and "
            "'remove'.",
        )
    for entry in entries:
        existing = next((e for e in vault.access_policies if e.same_principal(entry)), None)
        if kind == "add":
            if existing is None:
                vault.access_policies.append(entry)
            else:
                existing.merge(entry)
        elif kind == "replace":
            if existing is None:
                vault.access_policies.append(entry)
            else:
                vault.access_policies[vault.access_policies.index(existing)] = entry
        elif existing is not None:
            vault.access_policies.remove(existing)


class VaultBackend:
    """Live vaults by lower-case name (names are global) and soft-deleted ones."""

    def __init__(
        self, tenant: Tenant, peers: ArmPeers, groups: ResourceGroupBackend, operations: OperationLog
    ) -> None:
        self.tenant = tenant
        self.peers = peers
        self.groups = groups
        self.operations = operations
        self.vaults: dict[str, Vault] = {}
        self.deleted_vaults: dict[str, Vault] = {}

    def load_vault(self, spec: dict[str, Any], principal: Callable[[str], str]) -> None:
        """Seed one scenario vault; `principal` turns a scenario principal into an object id."""
        vault = Vault(
            name=spec["name"],
            subscription_id=self.tenant.subscription_id,
            resource_group=spec.get("resource_group", "rg-cmk"),
            location=spec.get("location", "westeurope"),
            tenant_id=self.tenant.tenant_id,
            sku=spec.get("sku", "standard"),
            enable_soft_delete=spec.get("enable_soft_delete", True),
            soft_delete_retention_days=spec.get("soft_delete_retention_days", 90),
            enable_purge_protection=spec.get("enable_purge_protection", False),
            enable_rbac_authorization=spec.get("enable_rbac_authorization", False),
            tags=dict(spec.get("tags") or {}),
            created_at=self.tenant.now(),
            ready_at=0.0,
            public_network_access=_known(
                spec.get("public_network_access", "Enabled"), _PUBLIC_ACCESS, "public_network_access"
            ),
            network_acls=parse_network_acls(spec.get("network_acls")),
        )
        for pe in spec.get("private_endpoints") or []:
            vault.private_endpoint_connections.append(
                PrivateEndpointConnection(
                    name=pe["name"],
                    private_endpoint_id=pe.get("private_endpoint_id") or self._endpoint_id(vault, pe["name"]),
                    status=_known(pe.get("status", "Approved"), _CONNECTION_STATUS, "status"),
                    etag=f'W/"{self.tenant.now():.0f}"',
                )
            )
        for entry in spec.get("access_policies") or []:
            vault.access_policies.append(
                AccessPolicyEntry(
                    tenant_id=self.tenant.tenant_id,
                    object_id=principal(entry["principal"]),
                    keys=list(entry.get("keys") or []),
                    secrets=list(entry.get("secrets") or []),
                    certificates=list(entry.get("certificates") or []),
                )
            )
        vault.vault_uri = self._vault_uri(vault.name)
        self.vaults[vault.name.lower()] = vault

    def find_vault(self, name: str) -> Vault | None:
        """The live (not soft-deleted) vault with this name, case-insensitive."""
        return self.vaults.get(name.lower())

    def find_vault_by_id(self, resource_id: str) -> Vault | None:
        """The live vault with this ARM id, case-insensitive."""
        name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        vault = self.find_vault(name)
        return vault if vault is not None and vault.id.lower() == resource_id.rstrip("/").lower() else None

    def vault_network_problem(self, resource_id: str) -> str | None:
        """Why a trusted Microsoft service cannot reach the live vault with this id, or None (also when none)."""
        vault = self.find_vault_by_id(resource_id)
        return vault.service_network_problem() if vault is not None else None

    def _endpoint_id(self, vault: Vault, name: str) -> str:
        return (
            f"/subscriptions/{vault.subscription_id}/resourceGroups/{vault.resource_group}"
            f"/providers/Microsoft.Network/privateEndpoints/{name}"
        )

    def get_connection(
        self, resource_group: str, name: str, connection: str
    ) -> tuple[Vault, PrivateEndpointConnection]:
        """A private endpoint connection of a vault, or 404 PrivateEndpointConnectionNotFound."""
        vault = self.get_vault(resource_group, name)
        found = next(
            (c for c in vault.private_endpoint_connections if c.name.lower() == connection.lower()), None
        )
        if found is None:
            raise SimError(
                404,
                "PrivateEndpointConnectionNotFound",
                f"The private endpoint connection '{connection}' of vault '{vault.name}' was not found.",
            )
        return vault, found

    def put_connection(
        self, resource_group: str, name: str, connection: str, body: Any
    ) -> tuple[Vault, PrivateEndpointConnection]:
        """Create or update a private endpoint connection (its state, and its endpoint id when created)."""
        vault = self.get_vault(resource_group, name)
        props = (body or {}).get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise SimError(400, "BadRequest", "The parameter 'properties' is required.")
        state = props.get("privateLinkServiceConnectionState") or {}
        existing = next(
            (c for c in vault.private_endpoint_connections if c.name.lower() == connection.lower()), None
        )
        if existing is None:
            endpoint = (props.get("privateEndpoint") or {}).get("id") or self._endpoint_id(vault, connection)
            existing = PrivateEndpointConnection(connection, str(endpoint))
            vault.private_endpoint_connections.append(existing)
        if state.get("status") is not None:
            existing.status = _known(
                state["status"], _CONNECTION_STATUS, "privateLinkServiceConnectionState.status"
            )
        if state.get("description") is not None:
            existing.description = str(state["description"])
        existing.etag = f'W/"{self.tenant.now():.3f}"'
        return vault, existing

    def delete_connection(self, resource_group: str, name: str, connection: str) -> bool:
        """Remove a private endpoint connection; False when there was none."""
        vault = self.get_vault(resource_group, name)
        kept = [c for c in vault.private_endpoint_connections if c.name.lower() != connection.lower()]
        removed = len(kept) != len(vault.private_endpoint_connections)
        vault.private_endpoint_connections = kept
        return removed

    def _vault_uri(self, name: str) -> str:
        uri = self.tenant.allocate_vault_uri(name)
        return uri if uri.endswith("/") else uri + "/"

    def get_vault(self, resource_group: str, name: str) -> Vault:
        """A live vault in this group, or 404 ResourceNotFound."""
        self.groups.get_resource_group(resource_group)
        vault = self.vaults.get(name.lower())
        if vault is None or vault.resource_group.lower() != resource_group.lower():
            raise errors.resource_not_found("Microsoft.KeyVault/vaults", name, resource_group)
        return vault

    def create_or_update_vault(
        self, resource_group: str, name: str, body: Any
    ) -> tuple[Vault, bool, AsyncOperation]:
        """PUT a vault; returns (vault, created, operation)."""
        rg = self.groups.get_resource_group(resource_group)
        if not isinstance(body, dict):
            raise SimError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        props = body.get("properties")
        if not isinstance(props, dict):
            raise SimError(400, "BadRequest", "The parameter 'properties' is required.")
        location = body.get("location")
        if not location:
            raise SimError(400, "LocationRequired", "The location property is required for this definition.")
        now = self.tenant.now()
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
                    f"'{self.tenant.subscription_id}'.",
                )
            vault = Vault(
                name=name,
                subscription_id=self.tenant.subscription_id,
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
            return vault, True, self.operations.new("vault", vault.id, now, vault.ready_at)
        apply_properties(existing, props, creating=False, default_tenant=self.tenant.tenant_id)
        if "tags" in body:
            existing.tags = dict(body.get("tags") or {})
        return existing, False, self.operations.new("vault", existing.id, now, now)

    def _recover_vault(
        self, vault: Vault, resource_group: str, now: float
    ) -> tuple[Vault, bool, AsyncOperation]:
        del self.deleted_vaults[vault.name.lower()]
        vault.deleted, vault.deleted_at, vault.scheduled_purge_at = False, None, None
        vault.resource_group = resource_group
        vault.ready_at = now + self.tenant.settings.vault_create_seconds
        self.vaults[vault.name.lower()] = vault
        return vault, True, self.operations.new("vault", vault.id, now, vault.ready_at)

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
            now = self.tenant.now()
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
                f"'{self.tenant.subscription_id}'.",
            )
        return vault

    def purge_deleted_vault(self, location: str, name: str) -> AsyncOperation:
        """Purge a soft-deleted vault; refused under purge protection inside the retention period."""
        vault = self.get_deleted_vault(location, name)
        now = self.tenant.now()
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
        return self.operations.new("purge", vault.deleted_id, now, now)

    def _purge(self, key: str) -> None:
        vault = self.deleted_vaults.pop(key, None)
        if vault is not None:
            self._purge_storage(vault.name)

    def _purge_storage(self, name: str) -> None:
        self.tenant.release_vault_uri(name)
        self.peers.drop_vault_keys(name)

    def tick(self, now: float) -> None:
        """Purge soft-deleted vaults whose retention ended."""
        for name, vault in list(self.deleted_vaults.items()):
            if vault.scheduled_purge_at is not None and now >= vault.scheduled_purge_at:
                self._purge(name)
