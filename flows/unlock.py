"""Unlock: restore exactly the key access a lock removed, wait for a Healthy policy, re-enable and verify environments."""

from dataclasses import replace
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.domain.models import PolicyInfo
from cmk.errors import CmkError
from cmk.plans.change import ChangePlan
from cmk.plans.lockdown import (
    ADMIN_CENTER,
    ENABLE_ACTION,
    RESTORE_ACTIONS,
    Grant,
    LockRow,
    grants_from_journal,
    plan_unlock,
    restore_targets,
    verified_online,
)
from cmk.preflight.parameters import Parameters
from flows.lock import RESTORED, REVOKED
from flows.parts.approval import approve_once
from flows.parts.endings import end_unapproved, stop_before_change
from flows.parts.lock_text import (
    admin_center_checklist,
    unhealthy_markdown,
    unlock_plan_markdown,
    unlock_summary_markdown,
)
from flows.parts.summaries import counts_line
from tasks.access import read_grants_in_place, restore_grant
from tasks.context import Change, Services, open_change
from tasks.environments import read_environments, reenable_environment
from tasks.policies import read_policy, wait_policy_health
from tasks.reports import publish_checklist, publish_journal, publish_outcome, publish_summary
from tasks.vaults import find_vault

FLOW = "unlock"
MAX_CONCURRENCY = 16


@flow(name=FLOW, log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY))
def unlock(
    change_id: str,
    requested_by: str,
    lock_change_id: str = "",
    policy_id: str = "",
    grants: tuple[dict[str, Any], ...] = (),
    environments: tuple[str, ...] = (),
    concurrency: int = 4,
    dry_run: bool = False,
    health_timeout_seconds: int = 900,
    operation_timeout_seconds: int = 1800,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
    approval_settings: str = DEFAULT_APPROVAL_BLOCK,
) -> dict[str, Any]:
    """Bring a locked enterprise policy's environments back online: restore the original key access, then re-enable.

    Args:
        change_id: Your change number for this unlock (not the lock's); re-running with it resumes safely.
        requested_by: Who asks for this unlock; they cannot approve it themselves.
        lock_change_id: Change id of the lock to undo; the access it removed is read back from the audit journal.
        policy_id: ARM id of the locked policy; needed only when grants are given explicitly.
        grants: The access to restore, when no lock journal exists (same fields as the lock journal's entries).
        environments: Environment ids to re-enable; empty = every environment the lock took offline.
        concurrency: How many environments are re-enabled at the same time.
        dry_run: Only show what would be restored and re-enabled; change nothing.
        health_timeout_seconds: How long to wait for the policy to report Healthy after access is restored.
        operation_timeout_seconds: How long to wait for one environment's re-enable.
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
        approval_settings: Name of the approval settings block.
    """
    logger = get_run_logger()
    targets_given, notes = check_parameters(
        change_id,
        requested_by,
        lock_change_id,
        policy_id,
        grants,
        environments,
        concurrency,
        health_timeout_seconds,
        operation_timeout_seconds,
    )
    change_id, requested_by, lock_change_id = change_id.strip(), requested_by.strip(), lock_change_id.strip()
    change = open_change(
        azure_connection, powerplatform_connection, flow=FLOW, change_id=change_id, requested_by=requested_by
    )
    services = change.services

    # Read
    restore, policy_id, blast = what_to_restore(services, lock_change_id, policy_id.strip(), list(grants))
    policy = read_policy(services, policy_id)
    vault = find_vault(services, policy.vault_id) if policy is not None and policy.vault_id else None
    present = read_grants_in_place(services, restore) if policy is not None else [False] * len(restore)
    envs = read_environments(services)
    targets = targets_given or (restore_targets(blast, envs, policy) if policy is not None else [])

    # Plan
    plan = plan_unlock(
        change_id,
        requested_by,
        policy,
        policy_id,
        restore,
        present,
        envs,
        targets,
        explicit=bool(targets_given),
        notes=notes,
        vault=vault,
    )
    source = f"the journal of lock `{lock_change_id}`" if lock_change_id else "the grants given"
    plan_md = unlock_plan_markdown(plan, policy.name if policy else policy_id, source)
    if plan.blocking or dry_run:
        return stop_before_change(
            change,
            f"Unlock {change_id}",
            plan_md,
            [r.environment_row() for r in plan.rows],
            plan.blocking,
            dry_run=dry_run,
            extra={"writes": [w.line() for w in plan.pending], "restore": [g.to_dict() for g in restore]},
        )
    assert policy is not None

    # Approve
    outcome = approve_once(
        change,
        approval_settings=approval_settings,
        description=f"## Approve unlocking policy `{policy.name}`: {len(plan.pending)} write(s)\n\n{plan_md}",
        gate=f"{FLOW}-restore",
    )
    if not outcome.approved:
        return end_unapproved(
            change,
            f"Unlock {change_id}",
            outcome,
            "No key access was restored and no environment was re-enabled.",
        )

    # Apply
    restore_all(change, plan, lock_change_id, policy, restore)
    try:
        policy = wait_policy_health(services, policy.id, "Healthy", health_timeout_seconds)
    except CmkError as exc:
        publish_summary(change, unhealthy_markdown(change_id, policy.name, restore, str(exc)))
        return Failed(message=f"Access was restored but the policy is not Healthy: {exc}")
    rows = reenable_all(services, plan, concurrency, operation_timeout_seconds)

    # Verify, report
    rows = verified_online(rows, read_environments(services), policy)
    csv_path = publish_outcome(change, rows)
    publish_summary(
        change,
        unlock_summary_markdown(change_id, source, policy.name, restore, rows, outcome, csv_path),
    )
    publish_journal(change)
    manual = [r for r in rows if r.status == ADMIN_CENTER]
    if manual:  # no documented API re-enables them: a checklist for the admin center, verified by a re-run
        publish_checklist(change, admin_center_checklist(change_id, policy.name, manual))
    report = {
        "change_id": change_id,
        "lock_change_id": lock_change_id,
        "policy_id": policy.id,
        "policy_health": policy.health,
        "restored": [g.to_dict() for g in restore],
        "rows": [r.to_dict() for r in rows],
        "admin_center": [r.environment_id for r in manual],
        "csv": str(csv_path),
    }
    failed = [r for r in rows if r.status == "failed"]
    if failed:
        return Failed(
            message=f"{len(failed)} environment(s) are not back online; {counts_line(rows)}.", data=report
        )
    logger.info("Policy %s is Healthy and %d environment(s) are online.", policy.name, len(rows))
    return report


def check_parameters(
    change_id: str,
    requested_by: str,
    lock_change_id: str,
    policy_id: str,
    grants: tuple[dict[str, Any], ...],
    environments: tuple[str, ...],
    concurrency: int,
    health_timeout_seconds: int,
    operation_timeout_seconds: int,
) -> tuple[list[str], list[str]]:
    """Refuse bad parameters before any request; the environment ids (duplicates removed) and the notes."""
    p = Parameters()
    change_id = p.change_id(change_id)
    p.requester(requested_by)
    if bool((lock_change_id or "").strip()) == bool(grants):
        p.refuse(
            "Give either lock_change_id (the access is read back from that lock's journal) or grants "
            "(with policy_id), not both and not neither."
        )
    if (lock_change_id or "").strip():
        if p.change_id(lock_change_id, "lock_change_id") == change_id:
            p.refuse("change_id must be a new change id for this unlock, not the lock's change id.")
    if grants and not (policy_id or "").strip():
        p.refuse("policy_id is required when grants are given explicitly.")
    for grant in grants:
        try:
            Grant.from_dict(grant)
        except ValueError as exc:
            p.refuse(f"grants: {exc}")
    if (policy_id or "").strip():
        p.policy_id(policy_id)
    env_ids = p.environment_ids(environments)
    p.between(concurrency, "concurrency", 1, MAX_CONCURRENCY)
    p.timeout(health_timeout_seconds, "health_timeout_seconds")
    p.timeout(operation_timeout_seconds, "operation_timeout_seconds")
    p.done()
    return env_ids, p.notes


def what_to_restore(
    services: Services, lock_change_id: str, policy_id: str, grants: list[dict[str, Any]]
) -> tuple[list[Grant], str, list[dict[str, Any]]]:
    """The grants to restore, the policy id and the lock's blast radius (from the lock's journal, or as given)."""
    if grants:
        return [Grant.from_dict(g) for g in grants], policy_id, []
    entries = services.journal.entries(change_id=lock_change_id, action=REVOKED)
    return grants_from_journal(entries, lock_change_id, policy_id)


def restore_all(
    change: Change, plan: ChangePlan, lock_change_id: str | None, policy: PolicyInfo, grants: list[Grant]
) -> None:
    """Restore each grant once and journal it, for whom (which also marks the lock as undone)."""
    services, change_id = change.services, change.change_id
    if services.checkpoints.step("restore"):
        get_run_logger().info("Key access of change %s was restored in an earlier run; not again.", change_id)
        return
    in_place = {w.target.lower() for w in plan.writes if w.in_place}
    for grant in grants:
        changed = False
        if grant.target.lower() not in in_place:
            plan.require(RESTORE_ACTIONS[grant.method], grant.target)
            changed = restore_grant(services, grant)
        services.journal.record(
            actor=change.requested_by,
            action=RESTORED,
            target=policy.id,
            before=None,
            after=grant.to_dict(),
            change_id=change_id,
            detail={"changed": changed, "lock_change_id": lock_change_id},
        )
    services.checkpoints.finish_step("restore", {"grants": [g.to_dict() for g in grants]})


def reenable_all(
    services: Services, plan: ChangePlan[LockRow], concurrency: int, timeout_seconds: float
) -> list[LockRow]:
    """Re-enable the planned environments with at most `concurrency` in flight; every environment gets a row."""
    planned = {r.environment_id.lower(): r for r in plan.rows}
    rows: list[LockRow] = [
        replace(
            planned.get(w.target.lower(), LockRow(w.target)), environment_id=w.target, status="already-done"
        )
        for w in plan.writes
        if w.action == ENABLE_ACTION and w.in_place
    ]
    pending = [w.target for w in plan.pending if w.action == ENABLE_ACTION]
    active: dict[PrefectFuture[LockRow], str] = {}
    while pending or active:
        while pending and len(active) < concurrency:
            env_id = pending.pop(0)
            active[reenable_environment.submit(services, env_id, timeout_seconds=timeout_seconds)] = env_id
        finished = next(as_completed(list(active)))
        env_id = active.pop(finished)
        try:
            rows.append(finished.result())
        except Exception as exc:
            rows.append(LockRow(env_id, status="failed", error=f"{type(exc).__name__}: {exc}"))
    return rows
