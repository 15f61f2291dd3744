"""Rotation by a new key and a new policy, as Microsoft documents "Change the environment's encryption key".

read the old policy's vault and key, the new vault, key and policy, the environments -> plan every write ->
approve -> create the new key, deploy the new policy, wait for its identity, grant it key access (new and old
vault) and the admin Reader, verify the identity can use the key -> move each environment (link, or unlink then
link) in waves -> read back each environment -> record when the old policy may be retired -> report.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from prefect import get_run_logger
from prefect.states import Failed

from cmk.domain import grace
from cmk.domain.models import KeyInfo, PolicyInfo
from cmk.domain.resource_ids import same_id
from cmk.domain.rows import EnvironmentRow, to_dicts
from cmk.plans.rotation import (
    CREATE_KEY,
    DEPLOY_POLICY,
    FLOW,
    GRANT_KEY_ACCESS,
    GRANT_READER,
    SET_ROTATION_POLICY,
    SwapPlan,
    SwapRequest,
    SwapState,
    key_after,
    key_target,
    plan_policy_swap,
    swap_policy_id,
)
from cmk.state.policy_retirements import POLICY_RETIREMENTS_FILE
from flows.parts.endings import finish, publish_change_reports
from flows.parts.rotation_fanout import FanOut, MoveResult, choose_fanout, move_environments
from flows.parts.rotation_gate import approve_plan, not_approved, stop_before_writes
from flows.parts.rotation_records import record_policy_retirement
from flows.parts.rotation_text import after_notes, plan_markdown, summary_markdown
from flows.parts.summaries import counts_line
from tasks.access import grant_key_access, grant_policy_reader, read_key_role_assignments
from tasks.context import Change, Services
from tasks.environments import read_environments
from tasks.keys import ensure_key, read_key, read_rotation_policy, set_rotation_policy
from tasks.policies import deploy_policy, read_policy, verify_policy_key_access, wait_policy_identity
from tasks.reports import Progress, publish_environment_table, publish_summary
from tasks.vaults import read_vault


def swap_policy(
    change: Change,
    old: PolicyInfo,
    request: SwapRequest,
    *,
    new_vault_id: str,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    fanout: FanOut,
    dry_run: bool,
    timeout_seconds: float,
    approval_settings: str,
    notes: Sequence[str] = (),
) -> Any:
    """Plan, approve, then new key + new policy + grants, every environment moved in waves, read back, reported."""
    started, services, change_id = grace.utc_now(), change.services, change.change_id
    # read
    state = read_state(services, old, request, new_vault_id)
    # plan
    swap = plan_policy_swap(
        state, request, change_id=change_id, requested_by=change.requested_by, notes=notes
    )
    lines = plan_lines(
        swap, state, request, choose_fanout(fanout, len(swap.targets)), canary_size, concurrency
    )
    lines.append(f"Stop starting environments after {failure_threshold or 'no'} failure(s)")
    plan_md = plan_markdown(swap.plan, "policy-swap", lines)
    if swap.plan.blocking or dry_run:
        return stop_before_writes(change, swap.plan, plan_md, dry_run)

    # approve
    outcome = approve_plan(
        change,
        plan_md,
        heading=f"Approve moving {len(swap.targets)} environment(s) to a new key and policy",
        gate=f"{FLOW}-swap",
        approval_settings=approval_settings,
    )
    if not outcome.approved:
        return not_approved(change, outcome, "Nothing was created and no environment was moved.")

    # apply: the new key, policy and grants, verified before any environment moves
    if state.recorded_targets is None:
        services.checkpoints.finish_step("plan", {"environments": swap.targets})
    new_key = create_new_key(services, swap, state, request)
    new_policy = create_new_policy(services, swap, state, request)
    grant_access(services, swap, state, request, new_policy)
    access = verify_policy_key_access(services, state.new_vault.id, new_policy, new_key)
    if any(f.severity == "blocking" for f in access):
        publish_summary(
            change,
            "# Rotation stopped\n\nThe new policy's identity cannot use the new key; no environment was moved:"
            "\n\n" + "\n".join(f"- {f.code}: {f.message}" for f in access),
        )
        return Failed(message="The new policy's identity cannot use the new key; see the summary artifact.")

    result = move_environments(
        services,
        swap.targets,
        new_policy,
        method=request.swap_method,
        fanout=fanout,
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        timeout_seconds=timeout_seconds,
        progress=Progress(
            len(swap.targets), f"Moving {len(swap.targets)} environment(s) to {new_policy.name}"
        ),
    )
    # verify (each environment read back by the mover) and report
    rows = report_rows(swap, old, result)

    entry = record_policy_retirement(change, swap, state, new_policy)
    csv_path = publish_environment_table(change, rows)
    finished = grace.utc_now()
    summary = summary_markdown(
        f"Rotation {change_id}: policy swap",
        [
            f"`{old.name}` (`{swap.old_label}`) -> `{new_policy.name}` (`{swap.new_label}`, systemId "
            f"`{new_policy.system_id}`)",
            f"Method {request.swap_method}, fan-out {result.fanout}; started {started.isoformat(timespec='seconds')}, "
            f"finished {finished.isoformat(timespec='seconds')} ({(finished - started).total_seconds():.0f} s)",
            *([f"Halted: {result.halt_reason}"] if result.halted else []),
            *after_notes(rows),
            f"The old policy, its key and its access may be retired after "
            f"**{entry.retire_after.isoformat(timespec='seconds')}** (recorded in `{POLICY_RETIREMENTS_FILE}`)",
            f"CSV: `{csv_path}`",
        ],
        rows,
        outcome.approvals,
        outcome.refusals,
        change_id,
        FLOW,
    )
    publish_change_reports(change, summary)
    get_run_logger().info("Policy swap %s finished: %s", change_id, counts_line(rows))
    report = {
        "change_id": change_id,
        "mode": "policy-swap",
        "old_policy_id": old.id,
        "new_policy_id": new_policy.id,
        "new_system_id": new_policy.system_id,
        "new_key": swap.new_label,
        "retire_after": entry.retire_after.isoformat(),
        "rows": to_dicts(rows),
        "halted": result.halted,
        "fanout": result.fanout,
        "csv": str(csv_path),
    }
    return finish(rows, result.halted, report)


# -- read -------------------------------------------------------------------------------------------------
def read_state(services: Services, old: PolicyInfo, request: SwapRequest, new_vault_id: str) -> SwapState:
    """Everything the plan needs, read once; nothing is written."""
    old_vault = read_vault(services, old.vault_id or "")
    new_vault = old_vault if same_id(new_vault_id, old_vault.id) else read_vault(services, new_vault_id)
    recorded = services.checkpoints.step("plan")
    return SwapState(
        old=old,
        old_vault=old_vault,
        new_vault=new_vault,
        old_key=read_key(services, old_vault.uri, old.key_name or ""),
        new_key=read_key(services, new_vault.uri, request.new_key_name),
        new_policy=read_policy(services, swap_policy_id(old, request)),
        environments=read_environments(services),
        old_assignments=read_key_role_assignments(services, old_vault, old.principal_id),
        recorded_targets=recorded["environments"] if recorded else None,
        new_key_rotation=read_rotation_policy(services, new_vault.uri, request.new_key_name)
        if request.lifetime
        else None,
    )


def plan_lines(
    swap: SwapPlan,
    state: SwapState,
    request: SwapRequest,
    chosen_fanout: str,
    canary_size: int,
    concurrency: int,
) -> list[str]:
    """The plan's headline for the approver."""
    downtimes = "(one short downtime each)" if request.swap_method == "link" else "(two short downtimes each)"
    return [
        f"Old policy `{state.old.name}` with key `{swap.old_label}`",
        f"New key `{swap.new_label}` ({swap.key_type} {swap.key_size}) and new policy `{request.new_policy_name}` "
        f"in resource group `{request.resource_group}`, geo `{state.old.location}`",
        "The new policy's identity gets key access to the new key and to the old vault (as Microsoft advises)",
        f"Environments move by **{request.swap_method}** {downtimes}: canary {canary_size} first, then "
        f"{concurrency} at a time ({chosen_fanout})",
        f"The old key, its access and the old policy are kept at least {grace.POLICY_GRACE_DAYS} days; the "
        "`retire` flow removes them later",
    ]


# -- apply: each step checkpointed, each write required to be in the approved plan --------------------------
def create_new_key(services: Services, swap: SwapPlan, state: SwapState, request: SwapRequest) -> KeyInfo:
    """The new key: recorded by an earlier run, adopted (in place), or created now."""
    ckpt, uri, name = services.checkpoints, state.new_vault.uri, request.new_key_name
    done = ckpt.step("new_key")
    key = read_key(services, uri, name, done["version"]) if done else state.new_key
    if key is None:
        swap.plan.require(CREATE_KEY, key_target(uri, name))
        key = ensure_key(services, uri, name, swap.key_type, swap.key_size, request.lifetime)
    if not done:
        ckpt.finish_step("new_key", {"key": key_target(uri, name), "version": key.version})
    lifetime = request.lifetime
    if (
        lifetime
        and swap.plan.permits(SET_ROTATION_POLICY, key_target(uri, name))
        and not ckpt.step("rotation_policy")
    ):
        set_rotation_policy(services, uri, name, lifetime)
        ckpt.finish_step("rotation_policy", {"policy": lifetime.detail()})
    return key


def create_new_policy(
    services: Services, swap: SwapPlan, state: SwapState, request: SwapRequest
) -> PolicyInfo:
    """The new policy, deployed unless an earlier run did or it exists, with its managed identity visible."""
    ckpt = services.checkpoints
    if not ckpt.step("new_policy") and state.new_policy is None:
        swap.plan.require(DEPLOY_POLICY, swap.new_policy_id)
        deploy_policy(
            services,
            request.resource_group,
            request.new_policy_name,
            state.old.location,
            state.new_vault.id,
            request.new_key_name,
        )
    policy = wait_policy_identity(services, swap.new_policy_id)
    ckpt.finish_step("new_policy", {"policy_id": policy.id, "system_id": policy.system_id})
    return policy


def grant_access(
    services: Services, swap: SwapPlan, state: SwapState, request: SwapRequest, new_policy: PolicyInfo
) -> None:
    """The planned grants: key access on the new (and old) vault, Reader for the Power Platform admin."""
    ckpt = services.checkpoints
    if ckpt.step("grants"):
        return
    made = []
    for write in swap.plan.pending:
        if write.action == GRANT_KEY_ACCESS:
            vault = state.new_vault if same_id(write.target, state.new_vault.id) else state.old_vault
            made.append(f"{write.action} {vault.id}: {grant_key_access(services, vault, new_policy)}")
        elif write.action == GRANT_READER:
            grant_policy_reader(services, new_policy, request.admin_object_id)
            made.append(f"{write.action} {new_policy.id}: {request.admin_object_id}")
    ckpt.finish_step("grants", {"made": made})


# -- verify and report --------------------------------------------------------------------------------------
def report_rows(swap: SwapPlan, old: PolicyInfo, result: MoveResult) -> list[EnvironmentRow]:
    """Each environment's planned row with its result; policy_after/key_after from its read-back state."""
    planned = {r.environment_id.lower(): r for r in swap.plan.rows}
    rows = []
    for row in result.rows:
        base = planned.get(row.environment_id.lower())
        # The result's values win, except empty ones: the plan knows the facts before (key_before, ...).
        merged = row if base is None else replace(base, **{k: v for k, v in vars(row).items() if v != ""})
        after = key_after(
            merged,
            new_policy_id=swap.new_policy_id,
            new_label=swap.new_label,
            old_policy_id=old.id,
            old_label=swap.old_label,
        )
        rows.append(replace(merged, **after))
    return rows
