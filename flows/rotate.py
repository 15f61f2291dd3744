"""Key rotation: a new key version (no downtime), or a new key and policy swapped in, environment by environment.

This module is the `rotate` flow's entry: its parameters, their validation (before any request), and the
dispatch to one module per mode, each reading top to bottom read -> plan -> approve -> apply -> verify -> report:
flows/parts/rotate_key_version.py and flows/parts/rotate_policy_swap.py (plans: cmk/plans/rotation.py).

Both modes record when what they replaced may be retired: in the change's checkpoint (step "retirement") and
in a register the `retire` flow reads (key versions: cmk/state/key_retirements.py, policies: cmk/state/policy_retirements.py,
both under CMK_STATE_DIR). Nothing is disabled, deleted or unshared here (safety invariant 2).
"""

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from prefect import flow
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.domain import grace
from cmk.domain.models import KeyLifetime, PolicyInfo
from cmk.moves.engine import SWAP_METHODS, SwapMethod
from cmk.plans.rotation import FLOW, SwapRequest, not_rotatable
from cmk.preflight.parameters import Parameters
from flows.parts.rotate_key_version import rotate_key_version
from flows.parts.rotate_policy_swap import swap_policy
from flows.parts.rotation_fanout import PER_ENVIRONMENT_MAX_CONCURRENCY, PER_WAVE_MAX_CONCURRENCY, FanOut
from tasks.context import open_change
from tasks.policies import read_policy

__all__ = ["FLOW", "SCHEDULER", "default_name", "rotate", "scheduled_change_id", "validate_inputs"]
Mode = Literal["key-version", "policy-swap"]
_NAME_CHARS = re.compile(r"[^A-Za-z0-9-]+")
SCHEDULER = "scheduled-rotation"
POLICY_NAME_MAX = 64  # cmk/preflight/parameters.py: enterprise policy names
KEY_NAME_MAX = 127  # Key Vault key names


def scheduled_change_id(mode: str) -> str:
    """A change id from the run's scheduled start: a retried run of the same schedule resumes the same change."""
    from prefect.runtime import flow_run

    when = flow_run.scheduled_start_time or grace.utc_now()
    return f"rotate-{mode}-{when.strftime('%Y%m%d')}"


@flow(
    name=FLOW, log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=PER_ENVIRONMENT_MAX_CONCURRENCY)
)
def rotate(
    policy_id: str,
    change_id: str = "",
    requested_by: str = SCHEDULER,
    mode: Mode = "key-version",
    new_policy_name: str = "",
    new_key_name: str = "",
    new_vault_id: str = "",
    resource_group: str = "",
    environments: tuple[str, ...] = (),
    whole_tenant: bool = False,
    swap_method: SwapMethod = "link",
    create_new_version: bool = True,
    key_expires_in: str = "P2Y",
    key_rotate_after: str = "P18M",
    key_notify_before_expiry: str = "P30D",
    powerplatform_admin_object_id: str = "",
    concurrency: int = 4,
    canary_size: int = 1,
    failure_threshold: int = 1,
    fanout: FanOut = "auto",
    dry_run: bool = False,
    operation_timeout_seconds: int = 4 * 3600,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
    approval_settings: str = DEFAULT_APPROVAL_BLOCK,
) -> Any:
    """Rotate the customer-managed key of Power Platform environments.

    Args:
        policy_id: ARM id of the enterprise policy in use today (its key is rotated, or it is replaced).
        change_id: Your change number; re-running with the same id resumes the change safely. Empty = "rotate-MODE-YYYYMMDD" from the scheduled run's date.
        requested_by: Who asks for this change; they cannot approve it themselves.
        mode: key-version = new version of the same key, no downtime; policy-swap = new key and new policy, each environment moved (short downtimes).
        new_policy_name: policy-swap: name of the new policy; empty = the old policy's name + "-" + the change id.
        new_key_name: policy-swap: the new key; empty = the old key's name + "-" + the change id (an existing key of the same type and size is adopted).
        new_vault_id: policy-swap: ARM id of the vault for the new key; empty = the old policy's vault.
        resource_group: policy-swap: resource group of the new policy; empty = the old policy's.
        environments: policy-swap: only these environment ids; empty = every environment of the old policy.
        whole_tenant: policy-swap: every environment on a customer-managed key in the policy's geo, whatever its policy.
        swap_method: policy-swap: link = link the new policy over the old one (one downtime); unlink-then-link = Microsoft's documented way (two downtimes).
        create_new_version: key-version: create the new version; off = a rotation policy already made it, only verify and record.
        key_expires_in: ISO 8601 duration after which each new key version expires; empty = leave the key's expiry and rotation policy as they are.
        key_rotate_after: ISO 8601 duration after which Key Vault creates the next version; empty = only this flow rotates.
        key_notify_before_expiry: ISO 8601 duration before expiry at which Key Vault raises its near-expiry event.
        powerplatform_admin_object_id: Object id of the Power Platform admin to get Reader on the new policy; empty = from the connection block.
        concurrency: How many environments are moved at the same time.
        canary_size: How many environments go first, alone, before the rest.
        failure_threshold: Stop starting new environments after this many failures (0 = never stop).
        fanout: auto, per-environment (a task per environment) or per-wave (a task per wave, bulk polling; for thousands).
        dry_run: Only check and plan; change nothing.
        operation_timeout_seconds: How long to wait for one environment's move.
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
        approval_settings: Name of the approval settings block.
    """
    change_id = change_id.strip() or scheduled_change_id(mode)
    inputs = validate_inputs(
        change_id,
        requested_by,
        policy_id,
        mode,
        new_vault_id,
        swap_method,
        concurrency,
        canary_size,
        failure_threshold,
        environments,
        whole_tenant,
        fanout,
        new_policy_name=new_policy_name,
        new_key_name=new_key_name,
        resource_group=resource_group,
        powerplatform_admin_object_id=powerplatform_admin_object_id,
        operation_timeout_seconds=operation_timeout_seconds,
        key_lifetime=(key_expires_in, key_rotate_after, key_notify_before_expiry),
    )
    change = open_change(
        azure_connection,
        powerplatform_connection,
        flow=FLOW,
        change_id=inputs.change_id,
        requested_by=inputs.requested_by,
    )
    old = read_policy(change.services, policy_id)
    refusal = not_rotatable(old, policy_id)
    if refusal:
        return Failed(message=f"{refusal} Nothing was changed.")
    if mode == "key-version":
        return rotate_key_version(
            change,
            old,
            create_new_version=create_new_version,
            approval_settings=approval_settings,
            dry_run=dry_run,
            notes=inputs.notes,
            lifetime=inputs.lifetime if create_new_version else None,  # adopted: the key keeps its own policy
        )
    request = swap_request(
        old,
        inputs,
        new_policy_name=new_policy_name,
        new_key_name=new_key_name,
        resource_group=resource_group,
        whole_tenant=whole_tenant,
        swap_method=swap_method,
        admin_object_id=inputs.admin_object_id or change.services.admin_object_id or "",
    )
    return swap_policy(
        change,
        old,
        request,
        new_vault_id=new_vault_id or old.vault_id or "",
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        fanout=fanout,
        dry_run=dry_run,
        timeout_seconds=operation_timeout_seconds,
        approval_settings=approval_settings,
        notes=inputs.notes,
    )


# -- inputs ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    """The validated parameters the modes need beyond the raw ones."""

    change_id: str
    requested_by: str
    environments: list[str]
    admin_object_id: str
    notes: list[str] = field(default_factory=list)
    lifetime: KeyLifetime | None = None


def validate_inputs(
    change_id: str,
    requested_by: str,
    policy_id: str,
    mode: str,
    new_vault_id: str,
    swap_method: str,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    environments: tuple[str, ...] | list[str] | None,
    whole_tenant: bool,
    fanout: str = "auto",
    *,
    new_policy_name: str = "",
    new_key_name: str = "",
    resource_group: str = "",
    powerplatform_admin_object_id: str = "",
    operation_timeout_seconds: float = 4 * 3600,
    key_lifetime: tuple[str, str, str] = ("", "", ""),
) -> Inputs:
    """Refuse bad parameters, all at once (InvalidParameterError), before anything is read or changed."""
    p = Parameters()
    change_id = p.change_id(change_id)
    requested_by = p.requester(requested_by)
    ref = p.policy_id(policy_id)
    if mode not in get_args(Mode):
        p.refuse(f"mode must be key-version or policy-swap, not {mode!r}.")
    p.vault_id(new_vault_id, "new_vault_id", optional=True)
    p.policy_name(new_policy_name, "new_policy_name", optional=True)
    p.key_name(new_key_name, "new_key_name", optional=True)
    p.resource_group(resource_group, optional=True)
    env_ids = p.environment_ids(environments or ())
    admin = p.guid(powerplatform_admin_object_id, "powerplatform_admin_object_id", optional=True)
    p.timeout(operation_timeout_seconds)
    lifetime = p.key_lifetime(*key_lifetime)
    if swap_method not in SWAP_METHODS:
        p.refuse(f"swap_method must be one of {', '.join(SWAP_METHODS)}, not {swap_method!r}.")
    if fanout not in get_args(FanOut):
        p.refuse(f"fanout must be one of {', '.join(get_args(FanOut))}, not {fanout!r}.")
    p.waves(concurrency, canary_size, failure_threshold, PER_WAVE_MAX_CONCURRENCY)
    if (
        fanout == "per-environment"
        and isinstance(concurrency, int)
        and concurrency > PER_ENVIRONMENT_MAX_CONCURRENCY
    ):
        p.refuse(
            f"fanout per-environment runs at most {PER_ENVIRONMENT_MAX_CONCURRENCY} environments at once; "
            f"got concurrency {concurrency}. Lower it, or use fanout per-wave (or auto) for more."
        )
    if environments and whole_tenant:
        p.refuse("Give either environments or whole_tenant, not both.")
    if mode == "key-version" and (environments or whole_tenant):
        p.refuse(
            "key-version rotation applies to every environment of the policy (they follow its key); "
            "leave environments and whole_tenant empty, or use mode policy-swap to move a chosen set."
        )
    if mode == "policy-swap" and ref is not None and not new_policy_name and change_id:
        default = default_name(ref.name, change_id, POLICY_NAME_MAX)
        p.policy_name(default, f"the default new_policy_name {default!r} (pass new_policy_name)")
    p.done()
    return Inputs(change_id, requested_by, env_ids, admin, list(p.notes), lifetime)


def swap_request(
    old: PolicyInfo,
    inputs: Inputs,
    *,
    new_policy_name: str,
    new_key_name: str,
    resource_group: str,
    whole_tenant: bool,
    swap_method: SwapMethod,
    admin_object_id: str,
) -> SwapRequest:
    """The policy-swap parameters with their defaults; the defaulted names are validated too, before any write."""
    p = Parameters()
    policy_name = new_policy_name or default_name(old.name, inputs.change_id, POLICY_NAME_MAX)
    key_name = new_key_name or default_name(old.key_name or "pp-cmk-key", inputs.change_id, KEY_NAME_MAX)
    p.policy_name(
        policy_name,
        "new_policy_name" if new_policy_name else "the default new_policy_name (pass new_policy_name)",
    )
    p.key_name(key_name, "new_key_name" if new_key_name else "the default new_key_name (pass new_key_name)")
    group = p.resource_group(resource_group or old.resource_group)
    p.done()
    return SwapRequest(
        new_policy_name=policy_name,
        new_key_name=key_name,
        resource_group=group,
        environments=inputs.environments,
        whole_tenant=whole_tenant,
        swap_method=swap_method,
        admin_object_id=admin_object_id,
        lifetime=inputs.lifetime,
    )


def default_name(base: str, change_id: str, limit: int = 120) -> str:
    """'<base>-<change id>' with only letters, digits and dashes, the base shortened to fit within limit."""
    suffix = _NAME_CHARS.sub("-", change_id).strip("-")
    room = max(0, limit - len(suffix) - 1)
    stem = _NAME_CHARS.sub("-", base).strip("-")[:room].strip("-")
    return (f"{stem}-{suffix}" if stem else suffix)[:limit].strip("-")
