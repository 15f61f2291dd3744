"""Key Vault: vault properties and access policies (ARM) and keys (data plane)."""

from __future__ import annotations

import threading
from dataclasses import asdict
from datetime import datetime
from typing import Any

from azure.core.credentials import TokenCredential
from azure.keyvault.keys import (
    KeyClient,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyVaultKey,
)
from azure.mgmt.keyvault import KeyVaultManagementClient

from cmk.clients.credentials import build_credential
from cmk.clients.sdk import CorrelationCapture, client_kwargs, mgmt_kwargs, translated
from cmk.clients.settings import AzureSettings
from cmk.domain.models import (
    AccessPolicyInfo,
    KeyInfo,
    KeyLifetime,
    PrivateEndpointInfo,
    RotationPolicyInfo,
    VaultInfo,
)
from cmk.domain.resource_ids import parse_vault_id
from cmk.errors import NotFoundError, PreconditionFailedError
from cmk.state.journal import Journal, JournalContext

SUPPORTED_KTY = ("RSA", "RSA-HSM")
DEFAULT_KEY_OPS = ("wrapKey", "unwrapKey")
POLICY_KEY_PERMISSIONS = ("get", "wrapKey", "unwrapKey")


def _text(value: Any) -> str | None:
    """An enum or string as plain text."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def key_info(key: KeyVaultKey) -> KeyInfo:
    """A KeyInfo from the SDK's KeyVaultKey; the size is the modulus' bit length."""
    props = key.properties
    modulus = getattr(key.key, "n", None)
    size = int.from_bytes(modulus, "big").bit_length() if modulus else None
    return KeyInfo(
        vault_uri=props.vault_url.rstrip("/"),
        name=props.name,
        version=props.version or "",
        kid=key.id or "",
        kty=_text(key.key_type) or "",
        size=size,
        enabled=bool(props.enabled),
        not_before=props.not_before,
        expires_on=props.expires_on,
        created_on=props.created_on,
        key_ops=tuple(_text(op) or "" for op in (key.key_operations or ())),
    )


def vault_info(data: dict[str, Any]) -> VaultInfo:
    """A VaultInfo from the vault's REST JSON (the SDK model's as_dict() keeps the REST names)."""
    props = data.get("properties") or {}
    ref = parse_vault_id(data["id"])
    policies = tuple(
        AccessPolicyInfo(
            object_id=entry.get("objectId", ""),
            key_permissions=frozenset(
                str(p).lower() for p in ((entry.get("permissions") or {}).get("keys") or [])
            ),
            tenant_id=entry.get("tenantId"),
        )
        for entry in props.get("accessPolicies") or []
    )
    acls = props.get("networkAcls") or {}
    endpoints = tuple(
        PrivateEndpointInfo(
            id=item.get("id") or "",
            private_endpoint_id=((item.get("properties") or {}).get("privateEndpoint") or {}).get("id"),
            status=((item.get("properties") or {}).get("privateLinkServiceConnectionState") or {}).get(
                "status"
            ),
        )
        for item in props.get("privateEndpointConnections") or []
    )
    return VaultInfo(
        id=data["id"],
        name=data.get("name") or ref.name,
        uri=(props.get("vaultUri") or "").rstrip("/"),
        resource_group=ref.resource_group,
        # Soft delete is on by default and cannot be turned off on current vaults: absent means on.
        soft_delete=props.get("enableSoftDelete") is not False,
        retention_days=props.get("softDeleteRetentionInDays"),
        purge_protection=bool(props.get("enablePurgeProtection")),
        rbac=bool(props.get("enableRbacAuthorization")),
        access_policies=policies,
        tenant_id=props.get("tenantId"),
        location=data.get("location"),
        public_network_access=props.get("publicNetworkAccess"),
        network_default_action=acls.get("defaultAction"),
        network_bypass=acls.get("bypass"),
        ip_rules=tuple(r.get("value", "") for r in acls.get("ipRules") or []),
        virtual_network_rules=tuple(r.get("id", "") for r in acls.get("virtualNetworkRules") or []),
        private_endpoints=endpoints,
    )


def rotation_policy_info(policy: Any) -> RotationPolicyInfo:
    """A RotationPolicyInfo from the SDK's KeyRotationPolicy."""
    values: dict[str, str | None] = {}
    for action in getattr(policy, "lifetime_actions", None) or []:
        kind = str(getattr(action.action, "value", action.action)).lower()
        if kind == "rotate":
            values["rotate_after_create"] = action.time_after_create
            values["rotate_before_expiry"] = action.time_before_expiry
        elif kind == "notify":
            values["notify_before_expiry"] = action.time_before_expiry
    return RotationPolicyInfo(expiry_time=getattr(policy, "expires_in", None), **values)


class KeyVaultService:
    """Vaults through ARM and keys through the data plane, as the Azure-side identity."""

    def __init__(
        self,
        settings: AzureSettings,
        journal: Journal | None = None,
        *,
        credential: TokenCredential | None = None,
        change_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.credential = credential or build_credential(settings)
        self.audit = JournalContext(journal, settings.actor, change_id)
        self._lock = threading.Lock()
        self._mgmt: dict[str, KeyVaultManagementClient] = {}
        self._keys: dict[str, KeyClient] = {}

    # -- clients ---------------------------------------------------------------------------------------
    def _mgmt_client(self, subscription_id: str) -> KeyVaultManagementClient:
        with self._lock:
            client = self._mgmt.get(subscription_id.lower())
            if client is None:
                client = KeyVaultManagementClient(
                    self.credential, subscription_id, **mgmt_kwargs(self.settings)
                )
                self._mgmt[subscription_id.lower()] = client
            return client

    def _key_client(self, vault_uri: str) -> KeyClient:
        uri = vault_uri.rstrip("/")
        with self._lock:
            client = self._keys.get(uri.lower())
            if client is None:
                client = KeyClient(
                    uri,
                    self.credential,
                    verify_challenge_resource=self.settings.verify_challenge_resource,
                    **client_kwargs(self.settings),
                )
                self._keys[uri.lower()] = client
            return client

    def close(self) -> None:
        """Close every client's connection pool."""
        with self._lock:
            for client in [*self._mgmt.values(), *self._keys.values()]:
                client.close()
            self._mgmt.clear()
            self._keys.clear()

    def __enter__(self) -> KeyVaultService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- vaults ----------------------------------------------------------------------------------------
    def get_vault(self, vault_id: str) -> VaultInfo:
        """The vault's CMK-relevant properties."""
        ref = parse_vault_id(vault_id)
        with translated("Reading the Key Vault", vault_id):
            vault = self._mgmt_client(ref.subscription_id).vaults.get(ref.resource_group, ref.name)
        return vault_info(vault.as_dict())

    def ensure_access_policy(
        self, vault_id: str, object_id: str, permissions: tuple[str, ...] | list[str] = POLICY_KEY_PERMISSIONS
    ) -> bool:
        """Grant key permissions to a principal by access policy; False when it already had them all."""
        vault = self.get_vault(vault_id)
        if vault.rbac:
            raise PreconditionFailedError(
                f"Vault {vault.name} uses Azure RBAC, so access policies have no effect. Assign the role "
                "'Key Vault Crypto Service Encryption User' at vault scope instead "
                "(ArmService.ensure_role_assignment).",
                target=vault_id,
            )
        current = vault.access_policy_for(object_id)
        missing = [p for p in permissions if current is None or not current.allows(p)]
        if not missing:
            return False
        ref = parse_vault_id(vault_id)
        capture = CorrelationCapture()
        entry = {
            "tenantId": (current.tenant_id if current else None)
            or vault.tenant_id
            or self.settings.tenant_id,
            "objectId": object_id,
            "permissions": {"keys": missing},
        }
        with translated("Adding the access policy", vault_id):
            self._mgmt_client(ref.subscription_id).vaults.update_access_policy(
                ref.resource_group,
                ref.name,
                "add",
                {"properties": {"accessPolicies": [entry]}},
                raw_response_hook=capture,
            )
        before = sorted(current.key_permissions) if current else []
        self.audit.record(
            action="keyvault.access_policy.add",
            target=vault_id,
            before={"object_id": object_id, "keys": before},
            after={"object_id": object_id, "keys": sorted({*before, *(p.lower() for p in missing)})},
            correlation_id=capture.correlation_id,
        )
        return True

    def remove_access_policy(self, vault_id: str, object_id: str) -> list[str]:
        """Remove a principal's access-policy entry; returns the key permissions it had ([] when none)."""
        vault = self.get_vault(vault_id)
        current = vault.access_policy_for(object_id)
        if current is None:
            return []
        ref = parse_vault_id(vault_id)
        capture = CorrelationCapture()
        entry = {
            "tenantId": current.tenant_id or vault.tenant_id or self.settings.tenant_id,
            "objectId": current.object_id,
            "permissions": {"keys": sorted(current.key_permissions)},
        }
        with translated("Removing the access policy", vault_id):
            self._mgmt_client(ref.subscription_id).vaults.update_access_policy(
                ref.resource_group,
                ref.name,
                "remove",
                {"properties": {"accessPolicies": [entry]}},
                raw_response_hook=capture,
            )
        removed = sorted(current.key_permissions)
        self.audit.record(
            action="keyvault.access_policy.remove",
            target=vault_id,
            before={"object_id": object_id, "keys": removed},
            after=None,
            correlation_id=capture.correlation_id,
        )
        return removed

    # -- keys ------------------------------------------------------------------------------------------
    def get_key(self, vault_uri: str, name: str, version: str | None = None) -> KeyInfo:
        """A key version (the latest when version is None)."""
        target = f"{vault_uri.rstrip('/')}/keys/{name}" + (f"/{version}" if version else "")
        with translated("Reading the key", target):
            return key_info(self._key_client(vault_uri).get_key(name, version))

    def get_rotation_policy(self, vault_uri: str, name: str) -> RotationPolicyInfo:
        """The key's rotation policy (the service answers a default one when none was set)."""
        with translated("Reading the key rotation policy", f"{vault_uri.rstrip('/')}/keys/{name}"):
            return rotation_policy_info(self._key_client(vault_uri).get_key_rotation_policy(name))

    def list_key_versions(self, vault_uri: str, name: str) -> list[KeyInfo]:
        """Every version of a key, oldest first."""
        client = self._key_client(vault_uri)
        target = f"{vault_uri.rstrip('/')}/keys/{name}"
        with translated("Listing key versions", target):
            versions = [p.version for p in client.list_properties_of_key_versions(name) if p.version]
            infos = [key_info(client.get_key(name, v)) for v in versions]
        if not infos:
            raise NotFoundError(f"Key {name} has no versions in {vault_uri}. Create it first.", target=target)
        # Stable sort: versions created within the same second keep the service's listing order.
        return sorted(infos, key=lambda k: k.created_on.timestamp() if k.created_on else 0.0)

    def ensure_key(
        self,
        vault_uri: str,
        name: str,
        kty: str = "RSA",
        size: int = 2048,
        expires_on: datetime | None = None,
    ) -> tuple[KeyInfo, bool]:
        """Adopt an existing key of the right type and size, or create it; (key, created)."""
        if kty not in SUPPORTED_KTY:
            raise PreconditionFailedError(
                f"Key type {kty} is not supported for CMK: use RSA or RSA-HSM.", target=name
            )
        try:
            existing = self.get_key(vault_uri, name)
        except NotFoundError:
            existing = None
        if existing is not None:
            if existing.kty != kty or existing.size != size:
                raise PreconditionFailedError(
                    f"Key {name} already exists in {vault_uri} as {existing.kty} {existing.size} "
                    f"bits, not {kty} "
                    f"{size}. Choose another key name, or ask for {existing.kty} {existing.size} to "
                    "adopt it.",
                    target=existing.kid,
                )
            return existing, False
        created = self._create(
            vault_uri, name, kty, size, action="keyvault.key.create", expires_on=expires_on
        )
        return created, True

    def create_key_version(self, vault_uri: str, name: str, expires_on: datetime | None = None) -> KeyInfo:
        """A new version of an existing key, with the same type and size (and the given expiry)."""
        current = self.get_key(vault_uri, name)
        return self._create(
            vault_uri,
            name,
            current.kty,
            current.size or 2048,
            action="keyvault.key.new_version",
            before=current,
            expires_on=expires_on,
        )

    def set_rotation_policy(self, vault_uri: str, name: str, lifetime: KeyLifetime) -> RotationPolicyInfo:
        """Give the key the rotation policy of lifetime (expiry for new versions, Rotate and Notify actions)."""
        target = f"{vault_uri.rstrip('/')}/keys/{name}"
        before = self.get_rotation_policy(vault_uri, name)
        actions = []
        if lifetime.rotate_after_create:
            actions.append(
                KeyRotationLifetimeAction(
                    KeyRotationPolicyAction.rotate, time_after_create=lifetime.rotate_after_create
                )
            )
        if lifetime.notify_before_expiry:
            actions.append(
                KeyRotationLifetimeAction(
                    KeyRotationPolicyAction.notify, time_before_expiry=lifetime.notify_before_expiry
                )
            )
        capture = CorrelationCapture()
        with translated("Setting the key rotation policy", target):
            policy = self._key_client(vault_uri).update_key_rotation_policy(
                name,
                KeyRotationPolicy(expires_in=lifetime.expires_in, lifetime_actions=actions),
                raw_response_hook=capture,
            )
        info = rotation_policy_info(policy)
        self.audit.record(
            action="keyvault.key.rotation_policy",
            target=target,
            before=asdict(before),
            after=asdict(info),
            correlation_id=capture.correlation_id,
        )
        return info

    def _create(
        self,
        vault_uri: str,
        name: str,
        kty: str,
        size: int,
        *,
        action: str,
        before: KeyInfo | None = None,
        expires_on: datetime | None = None,
    ) -> KeyInfo:
        capture = CorrelationCapture()
        target = f"{vault_uri.rstrip('/')}/keys/{name}"
        with translated("Creating the key", target):
            key = self._key_client(vault_uri).create_rsa_key(
                name,
                size=size,
                hardware_protected=kty == "RSA-HSM",
                key_operations=list(DEFAULT_KEY_OPS),
                expires_on=expires_on,
                raw_response_hook=capture,
            )
        info = key_info(key)
        self.audit.record(
            action=action,
            target=target,
            before=before.to_dict() if before else None,
            after=info.to_dict(),
            correlation_id=capture.correlation_id,
        )
        return info

    def set_key_version_enabled(self, vault_uri: str, name: str, version: str, enabled: bool) -> KeyInfo:
        """Enable or disable one key version; no call when it is already in that state."""
        current = self.get_key(vault_uri, name, version)
        if current.enabled == enabled:
            return current
        capture = CorrelationCapture()
        with translated("Updating the key version", current.kid):
            key = self._key_client(vault_uri).update_key_properties(
                name, version, enabled=enabled, raw_response_hook=capture
            )
        info = key_info(key)
        self.audit.record(
            action="keyvault.key.enable" if enabled else "keyvault.key.disable",
            target=current.kid,
            before={"enabled": current.enabled},
            after={"enabled": info.enabled},
            correlation_id=capture.correlation_id,
        )
        return info

    def can_identity_use_key(self, vault: VaultInfo, object_id: str) -> list[str]:
        """The access-policy key permissions (get, wrapKey, unwrapKey) the principal lacks."""
        entry = vault.access_policy_for(object_id)
        return [p for p in POLICY_KEY_PERMISSIONS if entry is None or not entry.allows(p)]
