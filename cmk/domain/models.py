"""Frozen domain models read from the three services (no SDK types leak past the clients)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import isodate

from cmk.domain.resource_ids import ResourceRef, parse_policy_id, parse_vault_id

MICROSOFT = "microsoft"  # keyManagedBy of an environment on the Microsoft-managed key

__all__ = [
    "AccessPolicyInfo",
    "CmkLink",
    "EnvironmentInfo",
    "KeyInfo",
    "KeyLifetime",
    "OperationHandle",
    "OperationStatus",
    "PolicyInfo",
    "PrivateEndpointInfo",
    "ResourceRef",
    "RoleAssignmentInfo",
    "VaultInfo",
    "parse_policy_id",
    "parse_vault_id",
]

OperationKind = Literal["link", "unlink", "governance", "enable"]
TERMINAL_STATES = frozenset({"Succeeded", "Failed", "Canceled"})


@dataclass(frozen=True)
class AccessPolicyInfo:
    """One vault access-policy entry: a principal and its key permissions (lower-case)."""

    object_id: str
    key_permissions: frozenset[str]
    tenant_id: str | None = None

    def allows(self, permission: str) -> bool:
        """Whether the entry grants a key permission ('all' grants every one)."""
        return "all" in self.key_permissions or permission.lower() in self.key_permissions


@dataclass(frozen=True)
class VaultInfo:
    """The properties of a Key Vault that CMK depends on."""

    id: str
    name: str
    uri: str
    resource_group: str
    soft_delete: bool
    retention_days: int | None
    purge_protection: bool
    rbac: bool
    access_policies: tuple[AccessPolicyInfo, ...] = ()
    tenant_id: str | None = None
    location: str | None = None
    public_network_access: str | None = None  # Enabled | Disabled (absent: Enabled)
    network_default_action: str | None = None  # networkAcls.defaultAction: Allow | Deny (absent: Allow)
    network_bypass: str | None = None  # networkAcls.bypass: AzureServices | None (absent: AzureServices)
    ip_rules: tuple[str, ...] = ()
    virtual_network_rules: tuple[str, ...] = ()  # subnet ids
    private_endpoints: tuple[PrivateEndpointInfo, ...] = ()

    def access_policy_for(self, object_id: str) -> AccessPolicyInfo | None:
        """The access-policy entry of a principal, if any."""
        wanted = object_id.lower()
        return next((p for p in self.access_policies if p.object_id.lower() == wanted), None)

    @property
    def public_access_disabled(self) -> bool:
        """Whether public network access is switched off (only private endpoints and the bypass get through)."""
        return (self.public_network_access or "").lower() == "disabled"

    @property
    def firewall_denies(self) -> bool:
        """Whether the firewall's default action is Deny (only ipRules, virtualNetworkRules and the bypass pass)."""
        return (self.network_default_action or "").lower() == "deny"

    @property
    def network_restricted(self) -> bool:
        """Whether the vault is behind its firewall or reachable only privately."""
        return self.public_access_disabled or self.firewall_denies

    @property
    def trusted_services_bypass(self) -> bool:
        """Whether "Allow trusted Microsoft services to bypass this firewall" is on (the spec's default when unset)."""
        return (self.network_bypass or "AzureServices").lower() == "azureservices"


@dataclass(frozen=True)
class PrivateEndpointInfo:
    """One private endpoint connection of a vault: its id, the endpoint and the connection's status."""

    id: str
    private_endpoint_id: str | None = None
    status: str | None = None  # Pending | Approved | Rejected | Disconnected


@dataclass(frozen=True)
class KeyInfo:
    """One key version: type, size (from the modulus), state and dates (UTC)."""

    vault_uri: str
    name: str
    version: str
    kid: str
    kty: str
    size: int | None
    enabled: bool
    not_before: datetime | None = None
    expires_on: datetime | None = None
    created_on: datetime | None = None
    key_ops: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (dates as ISO strings)."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class RotationPolicyInfo:
    """What matters of a key rotation policy: its expiry and its automatic Rotate trigger."""

    expiry_time: str | None  # ISO 8601 duration given to new versions, e.g. P1Y
    rotate_after_create: str | None = None
    rotate_before_expiry: str | None = None
    notify_before_expiry: str | None = None

    @property
    def rotates(self) -> bool:
        """Whether the key rotates itself (a Rotate lifetime action exists)."""
        return bool(self.rotate_after_create or self.rotate_before_expiry)


@dataclass(frozen=True)
class KeyLifetime:
    """The expiry and rotation policy the tool gives the keys it creates (ISO 8601 durations, validated)."""

    expires_in: str  # e.g. P2Y: each version expires this long after it is created
    rotate_after_create: str | None = (
        None  # e.g. P18M: Key Vault creates a new version; None = the rotate flow
    )
    notify_before_expiry: str | None = None  # e.g. P30D: Key Vault raises a near-expiry event

    def expires_on(self, now: datetime) -> datetime:
        """When a version created now expires."""
        return now + isodate.parse_duration(self.expires_in)

    def detail(self) -> str:
        """The policy as one line for the plan."""
        rotate = (
            f"Rotate {self.rotate_after_create} after creation" if self.rotate_after_create else "no Rotate"
        )
        notify = (
            f"Notify {self.notify_before_expiry} before expiry" if self.notify_before_expiry else "no Notify"
        )
        return f"versions expire after {self.expires_in}; {rotate}; {notify}"

    def matches(self, current: RotationPolicyInfo | None) -> bool:
        """Whether the key's rotation policy already says exactly this."""
        return current is not None and (
            current.expiry_time,
            current.rotate_after_create,
            current.rotate_before_expiry,
            current.notify_before_expiry,
        ) == (self.expires_in, self.rotate_after_create, None, self.notify_before_expiry)


@dataclass(frozen=True)
class PolicyInfo:
    """An Encryption enterprise policy as ARM returns it."""

    id: str
    name: str
    resource_group: str
    location: str
    kind: str
    system_id: str | None
    principal_id: str | None
    tenant_id: str | None
    vault_id: str | None
    key_name: str | None
    key_version: str | None
    health: str | None = None
    identity_type: str | None = None
    encryption_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


@dataclass(frozen=True)
class CmkLink:
    """The customer-managed-key policy linked to an environment."""

    policy_arm_id: str | None
    system_id: str | None
    status: str | None
    location: str | None = None


@dataclass(frozen=True)
class EnvironmentInfo:
    """A Power Platform environment's CMK-relevant state."""

    id: str
    display_name: str
    location: str
    azure_region: str | None
    sku: str | None
    managed: bool
    runtime_state: str | None
    management_state: str | None
    key_managed_by: str | None
    byok: bool = False
    cmk: CmkLink | None = None
    runtime_reason: str | None = None

    @property
    def operation_running(self) -> bool:
        """Whether a link or unlink is in progress (linkStatus Linking/Unlinking, or *Online)."""
        return bool(
            self.cmk and self.cmk.status and self.cmk.status.lower().startswith(("linking", "unlinking"))
        )

    def uses_policy(self, system_id: str | None) -> bool:
        """Whether this environment is tied to the policy with this systemId (the one question of "who uses it")."""
        return bool(system_id and self.cmk and (self.cmk.system_id or "").lower() == system_id.lower())

    def link_problems(self, system_id: str) -> list[str]:
        """Why this environment is not (yet) encrypted with the policy of this systemId; empty when it is."""
        problems = []
        if self.cmk is None:
            problems.append("no customer-managed key policy is linked")
        else:
            if (self.cmk.system_id or "").lower() != system_id.lower():
                problems.append(f"linked to another policy ({self.cmk.system_id})")
            if (self.cmk.status or "").lower() != "linked":
                problems.append(f"link status is {self.cmk.status}, not Linked")
        if (self.runtime_state or "").lower() != "enabled":
            problems.append(f"runtime state is {self.runtime_state}, not Enabled")
        if (self.key_managed_by or "").lower() == MICROSOFT:
            problems.append("key is still managed by Microsoft")
        return problems

    def unlink_problems(self) -> list[str]:
        """Why this environment is not back on the Microsoft-managed key; empty when it is."""
        problems = []
        if self.cmk is not None:
            problems.append(f"still linked to {self.cmk.system_id} ({self.cmk.status})")
        if (self.key_managed_by or "").lower() != MICROSOFT:
            problems.append(f"key managed by {self.key_managed_by}, not Microsoft")
        if (self.runtime_state or "").lower() != "enabled":
            problems.append(f"runtime state is {self.runtime_state}, not Enabled")
        return problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class OperationHandle:
    """A started BAP lifecycle operation; stored as a checkpoint and resumed later, in any process."""

    env_id: str
    kind: OperationKind
    url: str | None  # None: the service finished synchronously
    retry_after: float | None = None
    operation_id: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    system_id: str | None = None
    correlation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for checkpoints."""
        data = asdict(self)
        data["started_at"] = _iso(self.started_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperationHandle:
        """Rebuild a handle from to_dict() output."""
        values = dict(data)
        started = values.get("started_at")
        if isinstance(started, str):
            values["started_at"] = datetime.fromisoformat(started)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class OperationStatus:
    """What polling an operation says."""

    state: str  # NotStarted | Running | Succeeded | Failed | Canceled
    error_code: str | None = None
    error_message: str | None = None
    stages: tuple[tuple[str, str], ...] = ()  # (stage id, state)
    retry_after: float | None = None

    @property
    def done(self) -> bool:
        """Whether the operation reached a terminal state."""
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        """Whether the operation succeeded."""
        return self.state == "Succeeded"


@dataclass(frozen=True)
class RoleAssignmentInfo:
    """A role assignment: who holds which role definition at which scope."""

    id: str
    name: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str | None = None

    @property
    def role_guid(self) -> str:
        """The role definition's GUID (last segment of its id), lower-case."""
        return self.role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def environments_using(envs: Iterable[EnvironmentInfo], system_id: str | None) -> list[EnvironmentInfo]:
    """The environments tied to the policy with this systemId."""
    return [e for e in envs if e.uses_policy(system_id)]
