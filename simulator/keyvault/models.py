"""Key Vault data-plane state: keys, versions, deleted keys, rotation policies and RSA crypto (no HTTP)."""

from __future__ import annotations

import base64
import copy
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import isodate
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from simulator.core.ports import KeyVaultPeers
from simulator.core.tenant import Tenant
from simulator.keyvault import errors

KEY_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
KEY_TYPES = ("RSA", "RSA-HSM")
RSA_SIZES = (2048, 3072, 4096)
DEFAULT_KEY_SIZE = 2048
DEFAULT_KEY_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
KNOWN_KEY_OPS = {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}
MAX_TAGS = 15
DAY = 86400
DEFAULT_ROTATION_POLICY: dict[str, Any] = {
    "lifetimeActions": [{"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}],
    "attributes": {"expiryTime": None, "created": None, "updated": None},
}
# REST operation name (as in key_ops and error messages) per crypto operation.
CRYPTO_OPERATIONS = {
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "wrapkey": "wrapKey",
    "unwrapkey": "unwrapKey",
}
_PADDINGS: dict[str, Any] = {
    "RSA-OAEP": lambda: padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
    "RSA-OAEP-256": lambda: padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    ),
    "RSA1_5": lambda: padding.PKCS1v15(),
}


class VaultConfig(Protocol):
    """What the key store needs to know about a vault (the ARM vault object satisfies it)."""

    name: str
    enable_soft_delete: bool
    soft_delete_retention_days: int
    enable_purge_protection: bool


# -- helpers --------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    """Base64url without padding, as Key Vault encodes binary fields."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: Any, field_name: str = "value") -> bytes:
    """Decode base64url with or without padding; a 400 when it is not."""
    if not isinstance(text, str):
        raise errors.bad_parameter(f"Property '{field_name}' must be a base64url string.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise errors.bad_parameter(f"Property '{field_name}' is not valid base64url.") from exc


def _int_bytes(value: int) -> bytes:
    """An unsigned big-endian integer as bytes."""
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def parse_duration_seconds(text: Any) -> int:
    """Seconds in a positive ISO-8601 duration such as P90D, P2Y, P1M, PT48H (a month is 30 days, a year 365)."""
    try:
        parsed = isodate.parse_duration(text) if isinstance(text, str) else None
    except (isodate.ISO8601Error, ValueError):
        parsed = None
    if isinstance(parsed, isodate.Duration):
        days = int(parsed.years) * 365 + int(parsed.months) * 30
        seconds = days * DAY + int(parsed.tdelta.total_seconds())
    else:
        seconds = int(parsed.total_seconds()) if parsed is not None else 0
    if seconds <= 0:
        raise errors.bad_parameter(f"Invalid ISO-8601 duration: {text!r}. Use e.g. P90D, P1M, P2Y or PT48H.")
    return seconds


def _iso(ts: int) -> str:
    """A Unix time as ISO-8601 UTC, for messages."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_rsa_key(size: int) -> rsa.RSAPrivateKey:
    """Fresh RSA key material."""
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


# Scenario keys reuse pre-generated material so that loading and resets stay fast; API keys never do.
_POOL: dict[int, list[rsa.RSAPrivateKey]] = {}
_POOL_LIMIT = 8
_POOL_LOCK = threading.Lock()


def pooled_rsa_key(size: int, index: int) -> rsa.RSAPrivateKey:
    """The index-th pooled key of this size (cycles after _POOL_LIMIT keys)."""
    with _POOL_LOCK:
        pool = _POOL.setdefault(size, [])
        slot = index % _POOL_LIMIT
        while len(pool) <= slot:
            pool.append(generate_rsa_key(size))
        return pool[slot]


# -- state --------------------------------------------------------------------------------


@dataclass
class KeyVersion:
    """One version of a key: material and attributes."""

    name: str
    version: str
    kty: str
    key_size: int
    private_key: rsa.RSAPrivateKey = field(repr=False)
    key_ops: list[str]
    created: int
    updated: int
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    exportable: bool = False

    def unusable_reason(self, now: float) -> str | None:
        """'disabled', 'expired' or 'nbf' when the version may not be used now, else None."""
        if not self.enabled:
            return "disabled"
        if self.exp is not None and now >= self.exp:
            return "expired"
        if self.nbf is not None and now < self.nbf:
            return "nbf"
        return None

    def jwk(self, kid: str) -> dict[str, Any]:
        """The public JSON Web Key."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kid": kid,
            "kty": self.kty,
            "key_ops": list(self.key_ops),
            "n": b64url(_int_bytes(numbers.n)),
            "e": b64url(_int_bytes(numbers.e)),
        }

    def public(self) -> dict[str, Any]:
        """The version for snapshots (never the private key)."""
        return {
            "version": self.version,
            "kty": self.kty,
            "key_size": self.key_size,
            "key_ops": list(self.key_ops),
            "enabled": self.enabled,
            "nbf": self.nbf,
            "exp": self.exp,
            "created": self.created,
            "updated": self.updated,
            "tags": dict(self.tags),
        }


@dataclass
class Key:
    """A named key with its versions (in creation order) and rotation policy."""

    name: str
    versions: list[KeyVersion] = field(default_factory=list)
    rotation_policy: dict[str, Any] | None = None
    deleted_date: int | None = None
    scheduled_purge_date: int | None = None

    @property
    def latest(self) -> KeyVersion:
        """The most recently created version."""
        return self.versions[-1]

    def find(self, version: str | None) -> KeyVersion | None:
        """A version by id (case-insensitive), or the latest for None/''."""
        if not version:
            return self.latest
        wanted = version.lower()
        return next((v for v in self.versions if v.version == wanted), None)

    def public(self) -> dict[str, Any]:
        """The key for snapshots."""
        out: dict[str, Any] = {
            "name": self.name,
            "latest": self.latest.version,
            "versions": [v.public() for v in self.versions],
            "rotation_policy": copy.deepcopy(self.rotation_policy),
        }
        if self.deleted_date is not None:
            out["deleted_date"] = self.deleted_date
            out["scheduled_purge_date"] = self.scheduled_purge_date
        return out


@dataclass
class VaultKeys:
    """The live and soft-deleted keys of one vault, by lower-case key name (names are case-insensitive)."""

    name: str
    keys: dict[str, Key] = field(default_factory=dict)
    deleted: dict[str, Key] = field(default_factory=dict)


def recovery_level(vault: VaultConfig) -> str:
    """attributes.recoveryLevel for keys in this vault."""
    if not vault.enable_soft_delete:
        return "Purgeable"
    prefix = "Recoverable" if vault.soft_delete_retention_days >= 90 else "CustomizedRecoverable"
    return prefix if vault.enable_purge_protection else f"{prefix}+Purgeable"


class KeyVaultState:
    """Keys of every vault, by lower-case vault name."""

    def __init__(self, tenant: Tenant, peers: KeyVaultPeers) -> None:
        self.tenant = tenant
        self.peers = peers
        self.vaults: dict[str, VaultKeys] = {}
        self._pool_index: dict[int, int] = {}

    # -- scenario / lifecycle --------------------------------------------------------------
    def load(self, scenario: dict[str, Any]) -> None:
        """Seed keys from scenario vaults[].keys (pooled key material, see pooled_rsa_key)."""
        self.vaults.clear()
        self._pool_index.clear()
        now = self.tenant.now()
        for vault_spec in scenario.get("vaults", []):
            store = self.store(vault_spec["name"])
            for spec in vault_spec.get("keys", []) or []:
                self.create_key_for_scenario(store.name, spec, now)

    def create_key_for_scenario(self, vault_name: str, spec: dict[str, Any], now: float) -> Key:
        """Seed a key from its scenario spec (see docs/simulator.md for the fields)."""
        kty = spec.get("kty", "RSA")
        size = int(spec.get("size", DEFAULT_KEY_SIZE))
        count = int(spec.get("versions", 1))
        if count < 1:
            raise ValueError(f"scenario key {spec.get('name')!r}: versions must be >= 1")
        exp = int(now + spec["expires_in_days"] * DAY) if spec.get("expires_in_days") is not None else None
        nbf = (
            int(now + spec["not_before_in_days"] * DAY)
            if spec.get("not_before_in_days") is not None
            else None
        )
        for i in range(count):
            index = self._pool_index.get(size, 0)
            self._pool_index[size] = index + 1
            self.create_key(
                vault_name,
                spec["name"],
                kty=kty,
                key_size=size,
                key_ops=spec.get("key_ops"),
                enabled=bool(spec.get("enabled", True)),
                nbf=nbf,
                exp=exp,
                tags=spec.get("tags"),
                now=now - (count - 1 - i) * DAY,  # older versions were created earlier
                private_key=pooled_rsa_key(size, index) if kty in KEY_TYPES and size in RSA_SIZES else None,
            )
        key = self.store(vault_name).keys[spec["name"].lower()]
        if spec.get("rotation_policy") is not None:
            self.set_rotation_policy(vault_name, key.name, spec["rotation_policy"], now)
        return key

    def store(self, vault_name: str) -> VaultKeys:
        """The key store of a vault, created on first use."""
        name = vault_name.lower()
        found = self.vaults.get(name)
        if found is None:
            found = self.vaults[name] = VaultKeys(name)
        return found

    def drop_vault(self, vault_name: str) -> None:
        """Forget every key of a purged vault."""
        self.vaults.pop(vault_name.lower(), None)

    def tick(self, now: float) -> None:
        """Purge deleted keys whose scheduled purge date has passed; run due automatic rotations."""
        for store in self.vaults.values():
            for lname, key in list(store.deleted.items()):
                if key.scheduled_purge_date is not None and now >= key.scheduled_purge_date:
                    del store.deleted[lname]
            for key in list(store.keys.values()):
                if self._rotation_due(key, now):
                    self.rotate(store.name, key.name, now)

    def snapshot(self) -> dict[str, Any]:
        """State as JSON (no private key material)."""
        return {
            name: {
                "keys": {k.name: k.public() for k in store.keys.values()},
                "deleted_keys": {k.name: k.public() for k in store.deleted.values()},
            }
            for name, store in sorted(self.vaults.items())
        }

    # -- queries used by other services -----------------------------------------------------
    def key_problem(self, vault_name: str, key_name: str, version: str | None, now: float) -> str | None:
        """Why the key (version, or latest when None) cannot be used now, or None when it can."""
        store = self.vaults.get(vault_name.lower())
        lname = key_name.lower()
        if store is None or (lname not in store.keys and lname not in store.deleted):
            return f"key '{key_name}' does not exist in vault '{vault_name}'"
        if lname in store.deleted:
            return f"key '{key_name}' is deleted"
        key = store.keys[lname]
        found = key.find(version)
        if found is None:
            return f"key '{key_name}' has no version {version}"
        reason = found.unusable_reason(now)
        if reason == "disabled":
            return f"key '{key_name}' version {found.version} is disabled"
        if reason == "expired":
            return f"key '{key_name}' version {found.version} expired at {_iso(found.exp or 0)}"
        if reason == "nbf":
            return f"key '{key_name}' version {found.version} is not valid before {_iso(found.nbf or 0)}"
        return None

    def latest_version(self, vault_name: str, key_name: str) -> str | None:
        """The current version id of a live key, or None."""
        store = self.vaults.get(vault_name.lower())
        key = store.keys.get(key_name.lower()) if store else None
        return key.latest.version if key else None

    # -- keys -------------------------------------------------------------------------------
    def create_key(
        self,
        vault_name: str,
        name: str,
        *,
        kty: Any = "RSA",
        key_size: Any = None,
        key_ops: Any = None,
        enabled: Any = True,
        nbf: Any = None,
        exp: Any = None,
        tags: Any = None,
        exportable: Any = False,
        public_exponent: Any = None,
        now: float | None = None,
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> KeyVersion:
        """Create a key, or a new version of an existing one; validates like Key Vault."""
        if not isinstance(name, str) or not KEY_NAME.match(name):
            raise errors.invalid_name(str(name))
        size = DEFAULT_KEY_SIZE if key_size is None else key_size
        if kty not in KEY_TYPES or isinstance(size, bool) or size not in RSA_SIZES:
            raise errors.unsupported_key(kty, size)
        if public_exponent is not None and public_exponent != 65537:
            raise errors.bad_parameter(
                f"Unsupported public exponent {public_exponent}; only 65537 is supported."
            )
        if exportable:
            raise errors.bad_parameter(
                "Exportable keys must have a release policy (not supported by the simulator)."
            )
        store = self.store(vault_name)
        lname = name.lower()
        if lname in store.deleted:
            raise errors.deleted_but_recoverable(store.deleted[lname].name)
        at = int(self.tenant.now() if now is None else now)
        version = KeyVersion(
            name=store.keys[lname].name if lname in store.keys else name,
            version=uuid.uuid4().hex,
            kty=kty,
            key_size=int(size),
            private_key=private_key or generate_rsa_key(int(size)),
            key_ops=_check_key_ops(DEFAULT_KEY_OPS if key_ops is None else key_ops),
            created=at,
            updated=at,
            enabled=_check_bool(enabled, "enabled"),
            nbf=_check_time(nbf, "nbf"),
            exp=_check_time(exp, "exp"),
            tags=_check_tags(tags),
        )
        key = store.keys.get(lname)
        if key is None:
            key = store.keys[lname] = Key(name=name)
        key.versions.append(version)
        return version

    def get_key(self, vault_name: str, name: str) -> Key:
        """A live key; 404 KeyNotFound otherwise."""
        key = self.store(vault_name).keys.get(name.lower())
        if key is None:
            raise errors.key_not_found(name)
        return key

    def get_version(self, vault_name: str, name: str, version: str | None = None) -> KeyVersion:
        """A live key's version (latest when None/''); 404 KeyNotFound otherwise."""
        found = self.get_key(vault_name, name).find(version)
        if found is None:
            raise errors.key_not_found(name, version)
        return found

    def list_keys(self, vault_name: str) -> list[Key]:
        """Live keys sorted by name."""
        return sorted(self.store(vault_name).keys.values(), key=lambda k: k.name.lower())

    def list_versions(self, vault_name: str, name: str) -> list[KeyVersion]:
        """A live key's versions in creation order."""
        return list(self.get_key(vault_name, name).versions)

    def update_version(
        self,
        vault_name: str,
        name: str,
        version: str | None,
        *,
        attributes: Any = None,
        key_ops: Any = None,
        tags: Any = None,
        now: float | None = None,
    ) -> KeyVersion:
        """Update enabled/nbf/exp (null means unchanged), key_ops and tags of a version (latest when None)."""
        target = self.get_version(vault_name, name, version)
        attributes = attributes or {}
        if not isinstance(attributes, dict):
            raise errors.bad_parameter("Property 'attributes' must be an object.")
        enabled = attributes.get("enabled")
        nbf = _check_time(attributes.get("nbf"), "nbf")
        exp = _check_time(attributes.get("exp"), "exp")
        new_ops = _check_key_ops(key_ops) if key_ops is not None else None
        new_tags = _check_tags(tags) if tags is not None else None
        if enabled is not None:
            target.enabled = _check_bool(enabled, "enabled")
        if nbf is not None:
            target.nbf = nbf
        if exp is not None:
            target.exp = exp
        if new_ops is not None:
            target.key_ops = new_ops
        if new_tags is not None:
            target.tags = new_tags
        target.updated = int(self.tenant.now() if now is None else now)
        return target

    def delete_key(self, vault: VaultConfig, name: str, now: float | None = None) -> tuple[Key, bool]:
        """Delete a key: soft (kept as deleted) when the vault has soft delete; returns (key, soft)."""
        store = self.store(vault.name)
        key = store.keys.pop(name.lower(), None)
        if key is None:
            raise errors.key_not_found(name)
        if not vault.enable_soft_delete:
            return key, False
        at = int(self.tenant.now() if now is None else now)
        key.deleted_date = at
        key.scheduled_purge_date = at + int(vault.soft_delete_retention_days) * DAY
        store.deleted[name.lower()] = key
        return key, True

    def get_deleted(self, vault_name: str, name: str) -> Key:
        """A soft-deleted key; 404 otherwise."""
        key = self.store(vault_name).deleted.get(name.lower())
        if key is None:
            raise errors.deleted_key_not_found(name)
        return key

    def list_deleted(self, vault_name: str) -> list[Key]:
        """Soft-deleted keys sorted by name."""
        return sorted(self.store(vault_name).deleted.values(), key=lambda k: k.name.lower())

    def recover(self, vault_name: str, name: str) -> Key:
        """Bring a soft-deleted key back with all its versions."""
        store = self.store(vault_name)
        key = self.get_deleted(vault_name, name)
        del store.deleted[name.lower()]
        key.deleted_date = key.scheduled_purge_date = None
        store.keys[name.lower()] = key
        return key

    def purge(self, vault: VaultConfig, name: str, location: str = "unknown") -> None:
        """Remove a soft-deleted key for good; 403 while the vault has purge protection."""
        key = self.get_deleted(vault.name, name)
        if vault.enable_purge_protection:
            raise errors.purge_protected(vault.name, location)
        del self.store(vault.name).deleted[key.name.lower()]

    # -- rotation ---------------------------------------------------------------------------
    def rotate(self, vault_name: str, name: str, now: float | None = None) -> KeyVersion:
        """A new version like the latest one (exp from the rotation policy's expiryTime)."""
        key = self.get_key(vault_name, name)
        at = int(self.tenant.now() if now is None else now)
        latest = key.latest
        expiry = (key.rotation_policy or {}).get("attributes", {}).get("expiryTime")
        return self.create_key(
            vault_name,
            key.name,
            kty=latest.kty,
            key_size=latest.key_size,
            key_ops=list(latest.key_ops),
            tags=dict(latest.tags),
            exp=at + parse_duration_seconds(expiry) if expiry else None,
            now=at,
        )

    def get_rotation_policy(self, vault_name: str, name: str) -> dict[str, Any]:
        """The key's rotation policy, or the default (Notify 30 days before expiry) when none was set."""
        key = self.get_key(vault_name, name)
        return copy.deepcopy(key.rotation_policy or DEFAULT_ROTATION_POLICY)

    def set_rotation_policy(
        self, vault_name: str, name: str, body: Any, now: float | None = None
    ) -> dict[str, Any]:
        """Validate and store a rotation policy (REST shape); returns it."""
        key = self.get_key(vault_name, name)
        if not isinstance(body, dict):
            raise errors.bad_parameter("The rotation policy must be a JSON object.")
        attributes = body.get("attributes") or {}
        expiry = attributes.get("expiryTime")
        expiry_seconds = parse_duration_seconds(expiry) if expiry else None
        if expiry_seconds is not None and expiry_seconds < 28 * DAY:
            raise errors.bad_parameter("Rotation policy expiryTime must be at least 28 days (P28D).")
        actions = []
        seen: set[str] = set()
        for raw in body.get("lifetimeActions") or []:
            trigger = (raw or {}).get("trigger") or {}
            kind = str(((raw or {}).get("action") or {}).get("type", "")).lower()
            if kind not in ("rotate", "notify"):
                raise errors.bad_parameter(f"Invalid lifetime action type {kind!r}; use Rotate or Notify.")
            if kind in seen:
                raise errors.bad_parameter(f"Only one lifetime action of type {kind.title()} is allowed.")
            seen.add(kind)
            after, before = trigger.get("timeAfterCreate"), trigger.get("timeBeforeExpiry")
            if bool(after) == bool(before):
                raise errors.bad_parameter(
                    "A trigger needs exactly one of timeAfterCreate or timeBeforeExpiry."
                )
            if kind == "notify" and after:
                raise errors.bad_parameter("A Notify action only supports a timeBeforeExpiry trigger.")
            span = parse_duration_seconds(after or before)
            if span < 7 * DAY:
                raise errors.bad_parameter("Lifetime action triggers must be at least 7 days (P7D).")
            if before and expiry_seconds is not None and span >= expiry_seconds:
                raise errors.bad_parameter("timeBeforeExpiry must be shorter than the policy's expiryTime.")
            trig = {"timeAfterCreate": after} if after else {"timeBeforeExpiry": before}
            actions.append({"trigger": trig, "action": {"type": kind.title()}})
        at = int(self.tenant.now() if now is None else now)
        created = (key.rotation_policy or {}).get("attributes", {}).get("created") or at
        key.rotation_policy = {
            "lifetimeActions": actions,
            "attributes": {"expiryTime": expiry, "created": created, "updated": at},
        }
        return copy.deepcopy(key.rotation_policy)

    def _rotation_due(self, key: Key, now: float) -> bool:
        """Whether the key's Rotate lifetime action is due."""
        for action in (key.rotation_policy or {}).get("lifetimeActions", []):
            if action["action"]["type"] != "Rotate":
                continue
            trigger = action["trigger"]
            latest = key.latest
            if "timeAfterCreate" in trigger:
                return now >= latest.created + parse_duration_seconds(trigger["timeAfterCreate"])
            if latest.exp is not None:
                return now >= latest.exp - parse_duration_seconds(trigger["timeBeforeExpiry"])
        return False

    # -- crypto -----------------------------------------------------------------------------
    def crypto(
        self,
        vault_name: str,
        name: str,
        version: str | None,
        operation: str,
        alg: Any,
        value: bytes,
        now: float,
    ) -> tuple[KeyVersion, bytes]:
        """Run encrypt/decrypt/wrapkey/unwrapkey with the key version; returns (version, result)."""
        op = CRYPTO_OPERATIONS[operation]
        target = self.get_version(vault_name, name, version)
        reason = target.unusable_reason(now)
        if reason:
            raise errors.key_unusable(op, reason)
        if op not in target.key_ops:
            raise errors.operation_not_permitted(op)
        if alg not in _PADDINGS:
            raise errors.bad_parameter(
                f"Invalid algorithm {alg!r} for operation {op}; supported: {', '.join(_PADDINGS)}."
            )
        pad = _PADDINGS[alg]()
        try:
            if op in ("encrypt", "wrapKey"):
                return target, target.private_key.public_key().encrypt(value, pad)
            return target, target.private_key.decrypt(value, pad)
        except ValueError as exc:
            raise errors.bad_parameter(f"The {op} operation failed: {exc}") from exc


# -- validation helpers ------------------------------------------------------------------


def _check_bool(value: Any, name: str) -> bool:
    """A JSON boolean; 400 otherwise."""
    if not isinstance(value, bool):
        raise errors.bad_parameter(f"Property '{name}' must be a boolean.")
    return value


def _check_time(value: Any, name: str) -> int | None:
    """Unix seconds (int) or None; 400 otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.bad_parameter(f"Property '{name}' must be a Unix time in seconds.")
    return int(value)


def _check_key_ops(value: Any) -> list[str]:
    """A list of known key operations; 400 otherwise."""
    if not isinstance(value, list) or not all(isinstance(op, str) for op in value):
        raise errors.bad_parameter("Property 'key_ops' must be a list of strings.")
    unknown = [op for op in value if op not in KNOWN_KEY_OPS]
    if unknown:
        raise errors.bad_parameter(f"Invalid key operation(s): {', '.join(unknown)}.")
    return list(dict.fromkeys(value))


def _check_tags(value: Any) -> dict[str, str]:
    """At most 15 string tags; 400 otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise errors.bad_parameter("Property 'tags' must be an object of strings.")
    if len(value) > MAX_TAGS:
        raise errors.bad_parameter(f"A key can have at most {MAX_TAGS} tags.")
    return dict(value)


# -- wire shapes -------------------------------------------------------------------------


def _attributes(version: KeyVersion, vault: VaultConfig) -> dict[str, Any]:
    """The attributes object of a key bundle or item."""
    attrs: dict[str, Any] = {
        "enabled": version.enabled,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": recovery_level(vault),
        "exportable": version.exportable,
    }
    if version.nbf is not None:
        attrs["nbf"] = version.nbf
    if version.exp is not None:
        attrs["exp"] = version.exp
    if vault.enable_soft_delete:
        attrs["recoverableDays"] = int(vault.soft_delete_retention_days)
    return attrs


def key_bundle(version: KeyVersion, vault: VaultConfig, base_url: str) -> dict[str, Any]:
    """KeyBundle JSON."""
    kid = f"{base_url}/keys/{version.name}/{version.version}"
    return {"key": version.jwk(kid), "attributes": _attributes(version, vault), "tags": dict(version.tags)}


def key_item(version: KeyVersion, vault: VaultConfig, base_url: str, *, with_version: bool) -> dict[str, Any]:
    """KeyItem JSON (list element); list_keys uses kids without a version."""
    kid = f"{base_url}/keys/{version.name}" + (f"/{version.version}" if with_version else "")
    return {"kid": kid, "attributes": _attributes(version, vault), "tags": dict(version.tags)}


def _deleted_fields(key: Key, base_url: str) -> dict[str, Any]:
    """recoveryId, deletedDate and scheduledPurgeDate of a soft-deleted key."""
    return {
        "recoveryId": f"{base_url}/deletedkeys/{key.name}",
        "deletedDate": key.deleted_date,
        "scheduledPurgeDate": key.scheduled_purge_date,
    }


def deleted_key_bundle(key: Key, vault: VaultConfig, base_url: str, *, soft: bool = True) -> dict[str, Any]:
    """DeletedKeyBundle JSON (no recoveryId after a hard delete)."""
    out = key_bundle(key.latest, vault, base_url)
    if soft:
        out.update(_deleted_fields(key, base_url))
    return out


def deleted_key_item(key: Key, vault: VaultConfig, base_url: str) -> dict[str, Any]:
    """DeletedKeyItem JSON."""
    out = key_item(key.latest, vault, base_url, with_version=False)
    out.update(_deleted_fields(key, base_url))
    return out


def rotation_policy_json(policy: dict[str, Any], base_url: str, name: str) -> dict[str, Any]:
    """KeyRotationPolicy JSON."""
    return {"id": f"{base_url}/keys/{name}/rotationpolicy", **copy.deepcopy(policy)}
