"""The tenant as the inventory reads it in bulk, and the state questions asked of it (linked policy, locked, link failed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cmk.domain.models import (
    EnvironmentInfo,
    KeyInfo,
    PolicyInfo,
    RoleAssignmentInfo,
    RotationPolicyInfo,
    VaultInfo,
)
from cmk.inventory.drift import ExpectedGrant
from cmk.state.key_retirements import Retirement
from cmk.state.policy_retirements import PolicyRetirement

# Runtime reasons that disable an environment without a key problem (simulator names; see docs/simulator.md).
NOT_A_LOCK = frozenset({"lifecycleoperationinprogress", "admindisabled"})


@dataclass(frozen=True)
class KeyState:
    """A key as read: its versions (oldest first) and its rotation policy, or why it could not be read."""

    vault_uri: str
    name: str
    versions: tuple[KeyInfo, ...] = ()
    rotation: RotationPolicyInfo | None = None
    error: str | None = None

    def version(self, version: str | None) -> KeyInfo | None:
        """A version by id, or the latest when version is None."""
        if not self.versions:
            return None
        if not version:
            return self.versions[-1]
        return next((k for k in self.versions if k.version.lower() == version.lower()), None)


@dataclass
class TenantSnapshot:
    """Everything the inventory reads, keyed by lower-case ids: environments, policies, vaults, keys, grants."""

    environments: Sequence[EnvironmentInfo]
    policies: Sequence[PolicyInfo]
    vaults: Mapping[str, VaultInfo] = field(default_factory=dict)
    keys: Mapping[tuple[str, str], KeyState] = field(default_factory=dict)
    role_assignments: Mapping[str, Sequence[RoleAssignmentInfo]] = field(default_factory=dict)
    expected_grants: Sequence[ExpectedGrant] = ()
    retirements: Sequence[Retirement] = ()
    policy_retirements: Sequence[PolicyRetirement] = ()
    read_errors: Mapping[str, str] = field(default_factory=dict)  # target -> why it could not be read

    def key_of(self, policy: PolicyInfo) -> KeyState | None:
        """The key state of a policy's key, when its vault was read."""
        vault = self.vaults.get((policy.vault_id or "").lower())
        if vault is None or not policy.key_name:
            return None
        return self.keys.get((vault.uri.lower(), policy.key_name.lower()))


def policy_index(policies: Iterable[PolicyInfo]) -> dict[str, PolicyInfo]:
    """Policies by lower-case ARM id and by lower-case systemId."""
    index: dict[str, PolicyInfo] = {}
    for p in policies:
        index[p.id.lower()] = p
        if p.system_id:
            index[p.system_id.lower()] = p
    return index


def linked_policy(env: EnvironmentInfo, index: Mapping[str, PolicyInfo]) -> PolicyInfo | None:
    """The policy an environment is linked to, by ARM id or systemId."""
    if env.cmk is None:
        return None
    for ref in (env.cmk.policy_arm_id, env.cmk.system_id):
        if ref and ref.lower() in index:
            return index[ref.lower()]
    return None


def is_locked(env: EnvironmentInfo) -> bool:
    """Disabled while linked to a customer key, and not for an operation or by an administrator."""
    return (
        env.cmk is not None
        and (env.runtime_state or "").lower() == "disabled"
        and not env.operation_running
        and (env.runtime_reason or "").lower() not in NOT_A_LOCK
    )


def link_failed(env: EnvironmentInfo) -> bool:
    """Whether the environment's last link attempt failed."""
    return bool(env.cmk and (env.cmk.status or "").lower() in {"failed", "linkfailed"})
