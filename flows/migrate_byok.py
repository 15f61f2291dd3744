"""BYOK -> CMK migration: find legacy BYOK environments, check the target policy, approval, link in waves, verify."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.domain.rows import EnvironmentRow, to_dicts
from cmk.plans.change import ChangePlan
from cmk.plans.migration import BYOK_RETENTION_DAYS, choose_byok, plan_moves, planned_environments, until
from cmk.preflight import check_environment
from cmk.preflight.parameters import Parameters
from cmk.preflight.target import check_target_policy
from flows.parts.approval import approve_once
from flows.parts.endings import end_unapproved, finish, publish_change_reports, stop_before_change
from flows.parts.fanout import merge_plan, run_waves
from flows.parts.summaries import (
    approvals_section,
    counts_line,
    environment_list,
    findings_section,
    next_steps,
)
from tasks.context import Services, open_change
from tasks.environments import read_environments
from tasks.policies import read_target_policy
from tasks.reports import Progress, publish_environment_table

FLOW = "migrate_byok"
MAX_CONCURRENCY = 32


@flow(name=FLOW, log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY))
def migrate_byok(
    change_id: str,
    requested_by: str,
    policy_id: str,
    environments: tuple[str, ...] = (),
    concurrency: int = 4,
    canary_size: int = 1,
    failure_threshold: int = 1,
    dry_run: bool = False,
    operation_timeout_seconds: int = 4 * 3600,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
    approval_settings: str = DEFAULT_APPROVAL_BLOCK,
) -> dict[str, Any]:
    """Move environments from the legacy BYOK key to an existing customer-managed key policy.

    Args:
        change_id: Your change number; re-running with the same id resumes the change safely.
        requested_by: Who asks for this change; they cannot approve it themselves.
        policy_id: ARM id of the existing, Healthy Encryption enterprise policy to move the environments to.
        environments: Environment ids to migrate; leave empty for every BYOK environment in the policy's geo.
        concurrency: How many environments are linked at the same time.
        canary_size: How many environments go first, alone, before the rest.
        failure_threshold: Stop starting new environments after this many failures (0 = never stop).
        dry_run: Only check and plan; change nothing.
        operation_timeout_seconds: How long to wait for one environment's link.
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
        approval_settings: Name of the approval settings block.
    """
    logger = get_run_logger()
    requested_ids, notes = check_parameters(
        change_id,
        requested_by,
        policy_id,
        environments,
        concurrency,
        canary_size,
        failure_threshold,
        operation_timeout_seconds,
    )
    change_id, requested_by, policy_id = change_id.strip(), requested_by.strip(), policy_id.strip()
    change = open_change(
        azure_connection, powerplatform_connection, flow=FLOW, change_id=change_id, requested_by=requested_by
    )
    services = change.services
    started = datetime.now(UTC)

    # Read
    target = read_target_policy(services, policy_id)
    policy, findings = target.policy, check_target_policy(target)
    recorded = services.checkpoints.step("plan")
    targets = []
    if policy is not None:
        envs = read_environments(services)
        requested = recorded["environments"] if recorded else requested_ids
        targets, env_findings = choose_byok(envs, requested, policy)
        resuming = set(services.checkpoints.environments()) if recorded else set()
        findings += env_findings
        for env in targets:
            if env.id.lower() not in resuming:
                findings += [f for f in check_environment(env, policy) if f.code != "ENV_LEGACY_BYOK"]

    # Plan
    plan_rows = [
        EnvironmentRow.planned(e, key_managed_by_before="BYOK") if e.byok else EnvironmentRow.planned(e)
        for e in targets
    ]
    plan = plan_moves("migrate_byok", "link", change_id, requested_by, plan_rows, findings, notes)
    policy_name = policy.name if policy else policy_id
    plan_md = plan_markdown(plan, policy_name, canary_size, concurrency)
    if plan.blocking or dry_run:
        return stop_before_change(
            change, f"BYOK migration {change_id}", plan_md, plan_rows, plan.blocking, dry_run=dry_run
        )
    assert policy is not None
    if not recorded:
        services.checkpoints.finish_step("plan", {"environments": [r.environment_id for r in plan_rows]})

    # Approve
    outcome = approve_once(
        change,
        approval_settings=approval_settings,
        description=f"## Approve migrating {len(plan_rows)} BYOK environment(s) to `{policy.name}`\n\n{plan_md}",
        gate=f"{FLOW}-link",
    )
    if not outcome.approved:
        return end_unapproved(change, f"BYOK migration {change_id}", outcome, "No environment was migrated.")

    # Apply, verify, report
    progress = Progress(len(plan_rows), f"Migrating {len(plan_rows)} BYOK environment(s) to {policy.name}")
    result = run_waves(
        services,
        planned_environments(plan, "link"),
        "link",
        policy,
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        timeout_seconds=operation_timeout_seconds,
        progress=progress,
    )
    rows = verify_not_byok(services, merge_plan(plan_rows, result.rows))
    csv_path = publish_environment_table(change, rows)
    summary = summary_markdown(change_id, policy.name, rows, outcome, started, result.halt_reason, csv_path)
    publish_change_reports(change, summary)
    report = {
        "change_id": change_id,
        "policy_id": policy.id,
        "system_id": policy.system_id,
        "rows": to_dicts(rows),
        "byok_key_kept_until": until(started, BYOK_RETENTION_DAYS),
        "csv": str(csv_path),
    }
    logger.info("BYOK migration %s finished: %s", change_id, counts_line(rows))
    return finish(rows, result.halted, report)


def check_parameters(
    change_id: str,
    requested_by: str,
    policy_id: str,
    environments: tuple[str, ...],
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    operation_timeout_seconds: int,
) -> tuple[list[str], list[str]]:
    """Refuse bad parameters before any request; the environment ids (duplicates removed) and the notes."""
    p = Parameters()
    p.change_id(change_id)
    p.requester(requested_by)
    p.policy_id(policy_id)
    env_ids = p.environment_ids(environments)
    p.waves(concurrency, canary_size, failure_threshold, MAX_CONCURRENCY)
    p.timeout(operation_timeout_seconds, "operation_timeout_seconds")
    p.done()
    return env_ids, p.notes


def verify_not_byok(services: Services, rows: list[EnvironmentRow]) -> list[EnvironmentRow]:
    """Re-read the environments: a migrated one must no longer report the legacy BYOK key source."""
    current = {e.id.lower(): e for e in read_environments(services)}
    out = []
    for row in rows:
        env = current.get(row.environment_id.lower())
        if row.status in {"succeeded", "already-done", "skipped-done"} and env is not None and env.byok:
            row = replace(row, status="failed", error="linked, but the environment still reports a BYOK key")
        out.append(row)
    return out


def plan_markdown(plan: ChangePlan, policy_name: str, canary_size: int, concurrency: int) -> str:
    """What this migration will change, for the approver and the dry-run report."""
    return (
        f"**Change** `{plan.change_id}` requested by **{plan.requested_by}**\n\n{plan.notes_markdown()}\n"
        f"- Target enterprise policy: `{policy_name}`\n"
        f"- BYOK environments to migrate: **{len(plan.rows)}**, canary {canary_size} first, then {concurrency} "
        "at a time\n"
        "- Each environment is briefly disabled while its key is changed.\n"
        "- **One way**: a migrated environment cannot go back to BYOK; a later revert moves it to the "
        "Microsoft-managed key.\n\n"
        f"### Environments\n{environment_list(plan.rows)}\n\n### Writes\n{plan.writes_markdown()}\n\n"
        f"### Preflight\n{findings_section(plan.findings)}\n"
    )


def summary_markdown(
    change_id: str,
    policy_name: str,
    rows: list[EnvironmentRow],
    outcome: Any,
    started: datetime,
    halt_reason: str,
    csv_path: Any,
) -> str:
    """The final report."""
    return (
        f"# BYOK migration {change_id}\n\n- Target policy `{policy_name}`\n- Result: {counts_line(rows)}\n"
        + (f"- Halted: {halt_reason}\n" if halt_reason else "")
        + f"- CSV: `{csv_path}`\n\n## Keep in mind\n"
        f"- The service keeps each environment's BYOK key for at least {BYOK_RETENTION_DAYS} days (until "
        f"{until(started, BYOK_RETENTION_DAYS)}) so that support can restore the environment.\n"
        "- Migrated environments cannot go back to BYOK: reverting them moves them to the Microsoft-managed key.\n\n"
        f"## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n\n"
        f"## What to do next\n{next_steps(rows, change_id, FLOW)}\n"
    )
