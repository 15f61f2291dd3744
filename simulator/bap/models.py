"""BAP state: environments, lifecycle operations driven by simulated time, link rules and key-access locks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from simulator.bap import errors
from simulator.core.ports import BapPeers
from simulator.core.tenant import Tenant

if TYPE_CHECKING:
    from simulator.core.identities import Identity

SKUS = ("Production", "Sandbox", "Trial", "Developer", "Default", "Teams")
ENCRYPTIONS = ("microsoft", "byok", "cmk")
STAGES = ("Validate", "Prepare", "Run", "Finalize")
TERMINAL = ("Succeeded", "Failed")
POLICY_READ = "Microsoft.PowerPlatform/enterprisePolicies/read"

# protectionStatus.keyManagedBy values (the real CMK value is not documented; see docs/simulator.md).
KEY_BY_MICROSOFT = "Microsoft"
KEY_BY_CUSTOMER = "Customer"
# runtimeReasonCode values (invented, documented).
REASON_NONE = "NotSpecified"
REASON_OPERATION = "LifecycleOperationInProgress"
REASON_LOCKED = "CustomerManagedKeyInaccessible"
REASON_ADMIN = "AdminDisabled"

# Geo names the real scripts treat as the same (PPEP Enable-SubnetInjection.ps1).
_GEO_ALIASES = {"unitedstateseuap": "unitedstates", "uk": "unitedkingdom"}


def same_geo(a: str, b: str) -> bool:
    """Whether two Power Platform geo names are compatible (case-insensitive, with the known pairs)."""
    left, right = a.lower(), b.lower()
    return _GEO_ALIASES.get(left, left) == _GEO_ALIASES.get(right, right)


def iso(t: float) -> str:
    """Simulated Unix time as an ISO 8601 UTC string."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class PolicyRef:
    """What an environment remembers of the policy it is (being) linked to."""

    system_id: str
    arm_id: str
    location: str

    @property
    def policy_id(self) -> str:
        """The GUID at the end of the systemId."""
        return self.system_id.rstrip("/").rsplit("/", 1)[-1]

    def render(self, link_status: str) -> dict[str, str]:
        """The customerManagedKeys object."""
        return {
            "policyId": self.policy_id,
            "location": self.location,
            "id": self.arm_id,
            "systemId": self.system_id,
            "linkStatus": link_status,
        }


@dataclass
class Environment:
    """A Dataverse environment as the admin API knows it."""

    id: str
    display_name: str
    location: str
    azure_region: str
    sku: str
    managed: bool
    encryption: str = "microsoft"  # microsoft | byok | cmk
    cmk: PolicyRef | None = None  # set when encryption == "cmk"
    admin_disabled: bool = False  # disabled by the scenario ("runtime": "Disabled")
    locked: bool = False  # disabled because the linked policy lost access to its key
    failed_link: PolicyRef | None = None  # the target of the last failed link, until the next success
    active_op: Operation | None = None
    created: float = 0.0

    @property
    def runtime(self) -> tuple[str, str]:
        """(states.runtime.id, runtimeReasonCode)."""
        if self.active_op is not None and self.active_op.kind in ("link", "unlink"):
            return "Disabled", REASON_OPERATION
        if self.locked:
            return "Disabled", REASON_LOCKED
        if self.admin_disabled:
            return "Disabled", REASON_ADMIN
        return "Enabled", REASON_NONE


@dataclass
class Operation:
    """One lifecycle operation: NotStarted -> Running (four stages) -> Succeeded | Failed."""

    id: str
    env_id: str
    kind: str  # link | unlink | governance | enable | noop
    type_id: str
    created: float
    duration: float
    requested_by: dict[str, str]
    target: PolicyRef | None = None  # link: the policy to link; unlink: the policy to remove
    previous: PolicyRef | None = None  # swap: the policy linked before
    protection_level: str | None = None  # governance
    state: str = "NotStarted"
    stage_states: list[str] = field(default_factory=lambda: ["NotStarted"] * len(STAGES))
    last_action: float = 0.0
    error: dict[str, str] | None = None

    @property
    def start(self) -> float:
        """When the operation leaves NotStarted (after a tenth of its duration)."""
        return self.created + 0.1 * self.duration

    def stage_bounds(self, index: int) -> tuple[float, float]:
        """Start and end of a stage; the four stages share the remaining nine tenths equally."""
        width = 0.9 * self.duration / len(STAGES)
        return self.start + index * width, self.start + (index + 1) * width

    @property
    def terminal(self) -> bool:
        """Whether the operation has finished."""
        return self.state in TERMINAL


class BapState:
    """Environments and lifecycle operations."""

    def __init__(self, tenant: Tenant, peers: BapPeers) -> None:
        self.tenant = tenant
        self.peers = peers
        self.environments: dict[str, Environment] = {}  # lower-case id -> environment, scenario order
        self.operations: dict[str, Operation] = {}
        self._active: dict[str, Operation] = {}
        self._linked: dict[str, set[str]] = {}  # lower-case systemId -> lower-case env ids (encryption cmk)
        self._healthy_seen: dict[
            str, float
        ] = {}  # lower-case systemId -> last time its key access was seen ok
        self._loaded_at = 0.0

    # -- scenario -----------------------------------------------------------------------
    def load(self, scenario: dict[str, Any]) -> None:
        """Seed environments from scenario environments (fields: see docs/simulator.md)."""
        self.environments.clear()
        self.operations.clear()
        self._active.clear()
        self._linked.clear()
        self._healthy_seen.clear()
        now = self.tenant.now()
        self._loaded_at = now
        for spec in scenario.get("environments", []):
            env = self._parse(spec, now)
            if env.id.lower() in self.environments:
                raise ValueError(f"Duplicate environment id '{env.id}' in the scenario.")
            self.environments[env.id.lower()] = env
            if env.encryption == "cmk":
                ref = self._scenario_policy(spec)
                self._set_cmk(env, ref)

    def _parse(self, spec: dict[str, Any], now: float) -> Environment:
        """One scenario environment."""
        sku = spec.get("sku", "Production")
        if sku not in SKUS:
            raise ValueError(f"Environment '{spec.get('id')}': sku must be one of {SKUS}, not '{sku}'.")
        encryption = spec.get("encryption", "microsoft")
        if encryption not in ENCRYPTIONS:
            raise ValueError(f"Environment '{spec.get('id')}': encryption must be one of {ENCRYPTIONS}.")
        runtime = spec.get("runtime", "Enabled")
        if runtime not in ("Enabled", "Disabled"):
            raise ValueError(f"Environment '{spec.get('id')}': runtime must be Enabled or Disabled.")
        return Environment(
            id=spec["id"],
            display_name=spec.get("display_name", spec["id"]),
            location=spec.get("location", "europe"),
            azure_region=spec.get("azure_region", "westeurope"),
            sku=sku,
            managed=bool(spec.get("managed", False)),
            encryption=encryption,
            admin_disabled=runtime == "Disabled",
            created=now,
        )

    def _scenario_policy(self, spec: dict[str, Any]) -> PolicyRef:
        """The policy a scenario cmk environment is linked to, found among the policies ARM loaded, by name."""
        name = spec.get("policy")
        if not name:
            raise ValueError(f"Environment '{spec['id']}' has encryption cmk but no policy name.")
        found = self.peers.find_policies_by_name(name)
        if len(found) != 1:
            problem = "no" if not found else "more than one"
            raise ValueError(
                f"Environment '{spec['id']}': {problem} enterprise policy named '{name}' in the scenario."
            )
        policy = found[0]
        return PolicyRef(policy.system_id, policy.id, policy.location)

    # -- lookups ------------------------------------------------------------------------
    def get(self, env_id: str) -> Environment:
        """The environment with this id (case-insensitive), or a 404."""
        env = self.environments.get(env_id.lower())
        if env is None:
            raise errors.environment_not_found(env_id)
        return env

    def list_environments(self) -> list[Environment]:
        """Every environment in scenario order."""
        return list(self.environments.values())

    def get_operation(self, op_id: str) -> Operation:
        """The operation with this id, or a 404."""
        op = self.operations.get(op_id.lower())
        if op is None:
            raise errors.operation_not_found(op_id)
        return op

    def operations_for(self, env_id: str) -> list[Operation]:
        """Every operation of an environment, oldest first."""
        key = env_id.lower()
        return [op for op in self.operations.values() if op.env_id.lower() == key]

    def environments_linked_to(self, system_id: str) -> list[str]:
        """Ids of environments linked (or linking/unlinking) to the policy with this systemId."""
        key = system_id.lower()
        ids = set(self._linked.get(key, set()))
        for op in self._active.values():
            if op.kind in ("link", "unlink") and op.target is not None and op.target.system_id.lower() == key:
                ids.add(op.env_id.lower())
        return sorted(self.environments[i].id for i in ids)

    # -- requests -----------------------------------------------------------------------
    def link(self, env_id: str, system_id: str, caller: Identity) -> Operation:
        """Start linking (or swapping to) the Encryption policy with a systemId; refuse what is known now."""
        env = self.get(env_id)
        self._ensure_idle(env)
        policy = self.peers.find_policy_by_system_id(system_id)
        if policy is None:
            raise errors.policy_not_found(system_id)
        if str(policy.kind).lower() != "encryption":
            raise errors.policy_kind_mismatch(system_id, policy.kind)
        if env.sku in ("Trial", "Teams"):
            raise errors.sku_not_supported(env.id, env.sku)
        if not env.managed:
            raise errors.not_managed(env.id)
        if not same_geo(env.location, policy.location):
            raise errors.location_mismatch(env.id, env.location, policy.location)
        if not self.peers.has_action(caller.object_id, policy.id, POLICY_READ):
            raise errors.reader_required(caller.object_id, policy.id)
        ref = PolicyRef(policy.system_id, policy.id, policy.location)
        if (
            env.encryption == "cmk"
            and env.cmk is not None
            and env.cmk.system_id.lower() == ref.system_id.lower()
        ):
            return self._start(env, "noop", "NewCustomerManagedKey", 0.0, caller, target=ref)
        if env.encryption == "cmk":
            return self._start(
                env,
                "link",
                "RotateCustomerManagedKey",
                self.tenant.settings.link_seconds,
                caller,
                target=ref,
                previous=env.cmk,
            )
        return self._start(
            env, "link", "NewCustomerManagedKey", self.tenant.settings.link_seconds, caller, target=ref
        )

    def unlink(self, env_id: str, system_id: str, caller: Identity) -> Operation:
        """Start reverting the environment to the Microsoft-managed key."""
        env = self.get(env_id)
        self._ensure_idle(env)
        current = env.cmk if env.encryption == "cmk" else env.failed_link
        if current is None or current.system_id.lower() != system_id.lower():
            raise errors.not_linked(env.id, system_id)
        return self._start(
            env, "unlink", "RevertToMicrosoftKey", self.tenant.settings.unlink_seconds, caller, target=current
        )

    def set_governance(self, env_id: str, protection_level: str, caller: Identity) -> Operation:
        """Start making the environment a Managed Environment (Standard) or not (Basic)."""
        env = self.get(env_id)
        self._ensure_idle(env)
        if protection_level not in ("Standard", "Basic"):
            raise errors.invalid_body("protectionLevel must be 'Standard' or 'Basic'.")
        wanted = protection_level == "Standard"
        if env.managed == wanted:
            raise errors.already_managed(env.id)
        if wanted and env.sku in ("Trial", "Teams"):
            raise errors.sku_not_supported(env.id, env.sku)
        if not wanted and env.encryption == "cmk":
            raise errors.still_linked(env.id)
        op = self._start(
            env,
            "governance",
            "UpdateGovernanceConfiguration",
            self.tenant.settings.governance_seconds,
            caller,
        )
        op.protection_level = protection_level
        return op

    def enable(self, env_id: str, caller: Identity) -> Operation:
        """Start re-enabling a disabled (e.g. locked) environment; refused while its key is inaccessible."""
        env = self.get(env_id)
        self._ensure_idle(env)
        if not env.locked and not env.admin_disabled:
            raise errors.not_disabled(env.id)
        if env.locked and env.cmk is not None:
            problems = self._problems(env.cmk.system_id)
            if problems:
                raise errors.key_still_inaccessible(env.id, problems)
        return self._start(env, "enable", "EnableEnvironment", self.tenant.settings.reenable_seconds, caller)

    # -- time ---------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Progress operations; lock environments of policies that lost key access long enough ago."""
        for op in sorted(self._active.values(), key=lambda o: o.created):
            self._progress(op, now)
        delay = self.tenant.settings.lock_detection_seconds
        for system_id, env_ids in list(self._linked.items()):
            candidates = [
                self.environments[i]
                for i in env_ids
                if not self.environments[i].locked and self.environments[i].active_op is None
            ]
            if not candidates:
                continue
            if not self._problems(system_id):
                self._healthy_seen[system_id] = now
                continue
            since = self._healthy_seen.get(system_id, self._loaded_at)
            if now - since >= delay:
                for env in candidates:
                    env.locked = True

    def _progress(self, op: Operation, now: float) -> None:
        """Move one operation forward to `now`, settling each stage whose end has passed."""
        if now < op.start:
            return
        op.state = "Running"
        for index in range(len(STAGES)):
            if op.stage_states[index] in TERMINAL:
                continue
            begin, end = op.stage_bounds(index)
            op.last_action = max(op.last_action, min(now, end))
            if now < end:
                op.stage_states[index] = "Running"
                return
            if index == 0:
                problems = self._validate(op)
                if problems:
                    op.stage_states[index] = "Failed"
                    self._finish(op, end, problems)
                    return
            op.stage_states[index] = "Succeeded"
        self._finish(op, op.created + op.duration, None)

    def _validate(self, op: Operation) -> list[str]:
        """What the running operation finds wrong with key access (the rules not checked at request time)."""
        problems: list[str] = []
        env = self.environments[op.env_id.lower()]
        if op.kind == "link" and op.target is not None:
            problems += [f"new key: {p}" for p in self._problems(op.target.system_id)]
            if op.previous is not None:
                problems += [f"current key: {p}" for p in self._problems(op.previous.system_id)]
        elif op.kind == "unlink" and op.target is not None and env.encryption == "cmk":
            problems += [f"current key: {p}" for p in self._problems(op.target.system_id)]
        elif op.kind == "enable" and env.locked and env.cmk is not None:
            problems += self._problems(env.cmk.system_id)
        return problems

    def _finish(self, op: Operation, at: float, problems: list[str] | None) -> None:
        """Settle an operation and apply its effect on the environment."""
        env = self.environments[op.env_id.lower()]
        op.last_action = max(op.last_action, at)
        self._active.pop(op.id, None)
        if env.active_op is op:
            env.active_op = None
        if problems:
            op.state = "Failed"
            op.error = {
                "code": "CustomerManagedKeyInaccessible" if op.kind != "governance" else "OperationFailed",
                "message": f"The enterprise policy cannot use its encryption key: {'; '.join(problems)}",
            }
            if op.kind == "link":
                env.failed_link = op.target
            return
        op.state = "Succeeded"
        if op.kind == "link" and op.target is not None:
            self._set_cmk(env, op.target)
            env.failed_link = None
            self._healthy_seen[op.target.system_id.lower()] = at
        elif op.kind == "unlink":
            if env.encryption == "cmk":
                self._set_cmk(env, None)
                env.encryption = "microsoft"
            env.failed_link = None
            env.locked = False
        elif op.kind == "governance":
            env.managed = op.protection_level == "Standard"
        elif op.kind == "enable":
            env.locked = False
            env.admin_disabled = False

    # -- helpers ------------------------------------------------------------------------
    def _ensure_idle(self, env: Environment) -> None:
        """409 OperationNotStartable while an operation runs on the environment."""
        if env.active_op is not None and not env.active_op.terminal:
            raise errors.operation_not_startable(env.id)

    def _start(
        self,
        env: Environment,
        kind: str,
        type_id: str,
        duration: float,
        caller: Identity,
        *,
        target: PolicyRef | None = None,
        previous: PolicyRef | None = None,
    ) -> Operation:
        """Create an operation on the environment (a no-op one is born Succeeded)."""
        now = self.tenant.now()
        op = Operation(
            id=str(uuid.uuid4()),
            env_id=env.id,
            kind=kind,
            type_id=type_id,
            created=now,
            duration=max(0.0, float(duration)),
            requested_by={"id": caller.object_id, "displayName": caller.name, "type": caller.kind},
            target=target,
            previous=previous,
            last_action=now,
        )
        self.operations[op.id] = op
        if kind == "noop":
            op.state = "Succeeded"
            op.stage_states = ["Succeeded"] * len(STAGES)
            return op
        self._active[op.id] = op
        env.active_op = op
        return op

    def _set_cmk(self, env: Environment, ref: PolicyRef | None) -> None:
        """Point the environment at a policy (or none), keeping the linked index right."""
        if env.cmk is not None:
            linked = self._linked.get(env.cmk.system_id.lower())
            if linked is not None:
                linked.discard(env.id.lower())
                if not linked:
                    del self._linked[env.cmk.system_id.lower()]
        env.cmk = ref
        if ref is not None:
            env.encryption = "cmk"
            self._linked.setdefault(ref.system_id.lower(), set()).add(env.id.lower())

    def _problems(self, system_id: str) -> list[str]:
        """Key-access problems of the policy with this systemId (it may have been deleted)."""
        return self.peers.policy_key_problems(self.peers.find_policy_by_system_id(system_id))

    # -- rendering ----------------------------------------------------------------------
    def render(self, env: Environment, *, legacy: bool = False) -> dict[str, Any]:
        """The environment JSON (reference C.3)."""
        runtime, reason = env.runtime
        op = env.active_op if env.active_op is not None and not env.active_op.terminal else None
        if env.encryption == "cmk":
            protection: dict[str, Any] = {"keyManagedBy": KEY_BY_CUSTOMER}
        elif env.encryption == "byok":
            protection = {"keyManagedBy": KEY_BY_CUSTOMER, "keySource": "Byok"}
        else:
            protection = {"keyManagedBy": KEY_BY_MICROSOFT}
        cmk: dict[str, str] | None = None
        if op is not None and op.kind == "link" and op.target is not None:
            cmk = op.target.render("Linking")
        elif op is not None and op.kind == "unlink" and op.target is not None:
            cmk = op.target.render("Unlinking")
        elif env.cmk is not None:
            cmk = env.cmk.render("Linked")
        elif env.failed_link is not None:
            cmk = env.failed_link.render("Failed")
        prefix = "/providers/Microsoft.BusinessAppPlatform/" + (
            "environments" if legacy else "scopes/admin/environments"
        )
        properties: dict[str, Any] = {
            "tenantId": self.tenant.tenant_id,
            "azureRegion": env.azure_region,
            "displayName": env.display_name,
            "createdTime": iso(env.created),
            "provisioningState": "Succeeded",
            "environmentSku": env.sku,
            "isDefault": env.sku == "Default",
            "databaseType": "CommonDataService",
            "states": {
                "management": {"id": "Ready"},
                "runtime": {
                    "runtimeReasonCode": reason,
                    "requestedBy": {"displayName": "SYSTEM", "type": "NotSpecified"},
                    "id": runtime,
                },
            },
            "protectionStatus": protection,
            "governanceConfiguration": {"protectionLevel": "Standard" if env.managed else "Basic"},
        }
        if cmk is not None:
            properties["enterprisePolicies"] = {"customerManagedKeys": cmk}
        return {
            "id": f"{prefix}/{env.id}",
            "type": "Microsoft.BusinessAppPlatform/environments"
            if legacy
            else "Microsoft.BusinessAppPlatform/scopes/environments",
            "location": env.location,
            "name": env.id,
            "properties": properties,
        }

    def render_operation(self, op: Operation) -> dict[str, Any]:
        """The lifecycle operation JSON (reference C.4)."""
        stages = []
        for index, name in enumerate(STAGES):
            begin, end = op.stage_bounds(index)
            stage: dict[str, Any] = {"id": name, "name": name, "state": {"id": op.stage_states[index]}}
            if op.stage_states[index] != "NotStarted":
                stage["firstActionDateTime"] = iso(begin)
                stage["lastActionDateTime"] = iso(min(max(begin, op.last_action), end))
            stages.append(stage)
        body: dict[str, Any] = {
            "id": op.id,
            "links": {
                "self": {"path": f"/providers/Microsoft.BusinessAppPlatform/lifecycleOperations/{op.id}"},
                "environment": {"path": f"/providers/Microsoft.BusinessAppPlatform/environments/{op.env_id}"},
            },
            "type": {"id": op.type_id},
            "typeDisplayName": op.type_id,
            "state": {"id": op.state},
            "createdDateTime": iso(op.created),
            "lastActionDateTime": iso(op.last_action),
            "requestedBy": dict(op.requested_by),
            "stages": stages,
        }
        if op.error is not None:
            body["error"] = dict(op.error)
        return body

    def snapshot(self) -> dict[str, Any]:
        """State as JSON."""
        return {
            "environments": {
                env.id: {
                    "display_name": env.display_name,
                    "location": env.location,
                    "sku": env.sku,
                    "managed": env.managed,
                    "encryption": env.encryption,
                    "policy_system_id": env.cmk.system_id if env.cmk else None,
                    "failed_link": env.failed_link.system_id if env.failed_link else None,
                    "runtime": env.runtime[0],
                    "runtime_reason": env.runtime[1],
                    "locked": env.locked,
                    "active_operation": env.active_op.id if env.active_op else None,
                }
                for env in self.environments.values()
            },
            "operations": {
                op.id: {"environment": op.env_id, "type": op.type_id, "state": op.state, "error": op.error}
                for op in self.operations.values()
            },
        }
