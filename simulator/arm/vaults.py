"""Microsoft.KeyVault/vaults: the vault resource, its access policies and the RP's validation rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from simulator.core.errors import SimError

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
                "privateEndpointConnections": [],
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
        vault.public_network_access = str(props["publicNetworkAccess"])
    if "networkAcls" in props:
        vault.network_acls = props["networkAcls"]
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
