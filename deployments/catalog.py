"""Every deployment in one table: adding a flow to the UI is one DeploymentSpec entry.

Flows are imported lazily, so a flow whose module is missing or broken is left out (and logged) while the rest
are served. `deployments/serve.py` serves the table locally; `prefect.yaml` is generated from it
(`python -m deployments.prefect_yaml`) for `prefect deploy` onto a process work pool.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Schedule

log = logging.getLogger(__name__)

CHANGE_TAGS = ("cmk", "change")


@dataclass(frozen=True)
class ScheduleSpec:
    """A cron schedule; parameters override the deployment's defaults for the runs it creates."""

    cron: str
    timezone: str = "UTC"
    active: bool = True
    parameters: dict[str, Any] = field(default_factory=dict)
    slug: str | None = None

    def to_schedule(self) -> Schedule:
        """The Prefect schedule object."""
        from prefect.schedules import Cron

        return Cron(
            self.cron, timezone=self.timezone, active=self.active, parameters=self.parameters, slug=self.slug
        )


@dataclass(frozen=True)
class DeploymentSpec:
    """One served flow: where it lives, how the UI names and describes it, its tags and schedules."""

    flow: str  # "package.module:function"
    name: str
    description: str
    tags: tuple[str, ...] = CHANGE_TAGS
    schedules: tuple[ScheduleSpec, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    # "module:function" returning the RunnerDeployment itself; used instead of the fields above when it imports.
    builder: str | None = None

    @property
    def module(self) -> str:
        """The flow's module."""
        return self.flow.split(":", 1)[0]

    @property
    def entrypoint(self) -> str:
        """The flow as `prefect deploy` wants it: file path and function."""
        module, function = self.flow.split(":", 1)
        return f"{module.replace('.', '/')}.py:{function}"


NIGHTLY_INVENTORY = ScheduleSpec("30 2 * * *", slug="nightly")
EVERY_TEN_MINUTES = ScheduleSpec("*/10 * * * *", slug="every-10-minutes")
# The same schedule deployments/rotation.py builds; inactive until a policy_id is set (there or in the UI).
QUARTERLY_ROTATION = ScheduleSpec(
    "0 6 1 1,4,7,10 *", timezone="Europe/Amsterdam", active=False, slug="quarterly"
)

CATALOG: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        "flows.onboard:onboard",
        "encrypt-environments",
        "Create or adopt the key and the Encryption enterprise policy, grant access, then (after approval) link "
        "the chosen environments in waves and verify them.",
    ),
    DeploymentSpec(
        "flows.rotate:rotate",
        "rotate-key",
        "Rotate a policy's customer-managed key: mode key-version (new key version, no downtime) or "
        "policy-swap (new key and policy, environments moved in waves, canary first). Quarterly, or on "
        "demand. Every run pauses for approval; old keys are retired later by the retire flow.",
        tags=(*CHANGE_TAGS, "scheduled"),
        schedules=(QUARTERLY_ROTATION,),
        builder="deployments.rotation:rotation_deployment",
    ),
    DeploymentSpec(
        "flows.retire:retire",
        "retire-old-keys",
        "Disable key versions and remove old policies, keys and access whose grace period has passed and that "
        "no environment depends on.",
    ),
    DeploymentSpec(
        "flows.migrate_byok:migrate_byok",
        "migrate-byok",
        "Move environments still on a legacy BYOK key to a customer-managed key policy, in waves.",
    ),
    DeploymentSpec(
        "flows.revert:revert",
        "revert-to-microsoft-key",
        "Unlink environments from their customer-managed key back to the Microsoft-managed key.",
    ),
    DeploymentSpec(
        "flows.lock:lock",
        "lock-policy",
        "DESTRUCTIVE: revoke a policy's key access so every linked environment goes offline. Two approvers "
        "who are not the requester, and the policy name typed back.",
        tags=(*CHANGE_TAGS, "destructive"),
    ),
    DeploymentSpec(
        "flows.unlock:unlock",
        "unlock-policy",
        "Restore a locked policy's key access, re-enable its environments and verify them.",
    ),
    DeploymentSpec(
        "flows.inventory:inventory",
        "nightly-inventory",
        "Read-only: every environment with its policy, key and health, and the tenant's risk findings. "
        "Runs nightly; run it on demand any time.",
        tags=("cmk", "read-only", "scheduled"),
        schedules=(NIGHTLY_INVENTORY,),
    ),
    DeploymentSpec(
        "flows.regrant:regrant_access",
        "regrant-access",
        "Grant again the key access the audit journal recorded and someone removed (the inventory's "
        "access-missing finding); nothing else is written. Pauses for approval.",
    ),
    DeploymentSpec(
        "flows.remediate:remediate",
        "remediate-finding",
        "Self-healing dispatcher, started by the cmk-self-healing automation on an inventory finding: starts "
        "the change run that repairs it (which pauses for approval). Writes and approves nothing itself.",
        tags=("cmk", "self-healing"),
    ),
    DeploymentSpec(
        "flows.reminders:approval_reminders",
        "approval-reminders",
        "Read-only: every 10 minutes, remind approvers once of each paused run whose approval expires soon.",
        tags=("cmk", "read-only", "scheduled"),
        schedules=(EVERY_TEN_MINUTES,),
    ),
)


@dataclass
class Resolved:
    """Which catalog entries can be served now (with their flow) and which cannot (with the reason)."""

    available: list[tuple[DeploymentSpec, Flow[Any, Any]]] = field(default_factory=list)
    missing: list[tuple[DeploymentSpec, str]] = field(default_factory=list)


def _import(path: str) -> Any:
    module, attr = path.split(":", 1)
    return getattr(importlib.import_module(module), attr)


def resolve(catalog: Sequence[DeploymentSpec] = CATALOG) -> Resolved:
    """Import each entry's flow; an entry whose module is absent or broken is listed as missing."""
    resolved = Resolved()
    for spec in catalog:
        try:
            resolved.available.append((spec, _import(spec.flow)))
        except ModuleNotFoundError as exc:
            reason = "not written yet" if exc.name == spec.module else f"{type(exc).__name__}: {exc}"
            resolved.missing.append((spec, f"{spec.module} cannot be imported ({reason})"))
        except Exception as exc:  # a broken module must not stop the others from being served
            resolved.missing.append((spec, f"{spec.module} failed to import: {type(exc).__name__}: {exc}"))
    for spec, reason in resolved.missing:
        log.warning("Deployment %s is not served: %s.", spec.name, reason)
    return resolved


def build_deployment(spec: DeploymentSpec, flow: Flow[Any, Any]) -> RunnerDeployment:
    """The runner deployment for one entry: from its builder when that imports, else from the spec."""
    if spec.builder:
        try:
            builder = _import(spec.builder)
        except ModuleNotFoundError as exc:
            log.info(
                "%s: %s not available (%s); using the catalog's own settings.", spec.name, spec.builder, exc
            )
        else:
            deployment = builder()
            log.info("%s: built by %s.", spec.name, spec.builder)
            return deployment
    return flow.to_deployment(
        name=spec.name,
        description=spec.description,
        tags=list(spec.tags),
        schedules=[s.to_schedule() for s in spec.schedules],
        parameters=dict(spec.parameters),
    )


def runner_deployments(catalog: Sequence[DeploymentSpec] = CATALOG) -> list[RunnerDeployment]:
    """Runner deployments for every entry whose flow imports."""
    return [build_deployment(spec, flow) for spec, flow in resolve(catalog).available]
