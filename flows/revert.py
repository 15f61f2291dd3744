"""Revert to the Microsoft-managed key: unlink chosen environments (or all of a policy's) in waves and verify."""

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.domain.models import EnvironmentInfo, PolicyInfo
from cmk.domain.rows import EnvironmentRow, to_dicts
from cmk.plans.change import ChangePlan
from cmk.plans.migration import (
    REVERT_KEEP_KEY_DAYS,
    plan_moves,
    planned_environments,
    revert_targets,
    until,
)
from cmk.preflight import Finding
from cmk.preflight.parameters import Parameters
from cmk.preflight.target import policy_health_findings
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
from tasks.context import Change, Services, open_change
from tasks.environments import read_environments
from tasks.policies import read_policy
from tasks.reports import Progress, publish_environment_table

FLOW = "revert"
MAX_CONCURRENCY = 32


@flow(name=FLOW, log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY))
def revert(
    change_id: str,
    requested_by: str,
    environments: tuple[str, ...] = (),
    policy_id: str = "",
    concurrency: int = 4,
    canary_size: int = 1,
    failure_threshold: int = 1,
    dry_run: bool = False,
    operation_timeout_seconds: int = 4 * 3600,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
    approval_settings: str = DEFAULT_APPROVAL_BLOCK,
) -> dict[str, Any]:
    """Move environments off their customer-managed key back to the Microsoft-managed key.

    Args:
        change_id: Your change number; re-running with the same id resumes the change safely.
        requested_by: Who asks for this change; they cannot approve it themselves.
        environments: Environment ids to revert; leave empty to revert every environment of policy_id.
        policy_id: ARM id of the enterprise policy whose environments are reverted (or that the listed ones must use).
        concurrency: How many environments are unlinked at the same time.
        canary_size: How many environments go first, alone, before the rest.
        failure_threshold: Stop starting new environments after this many failures (0 = never stop).
        dry_run: Only check and plan; change nothing.
        operation_timeout_seconds: How long to wait for one environment's unlink.
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
        approval_settings: Name of the approval settings block.
    """
    logger = get_run_logger()
    requested_ids, notes = check_parameters(
        change_id,
        requested_by,
        environments,
        policy_id,
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
    recorded = services.checkpoints.step("plan")
    envs = read_environments(services)
    policy = read_policy(services, policy_id) if policy_id else None
    findings: list[Finding] = []
    if policy_id and policy is None:
        findings.append(
            Finding(
                "POLICY_NOT_FOUND",
                "blocking",
                policy_id,
                "The enterprise policy does not exist or cannot be read.",
                "Check the policy id.",
            )
        )
    requested = recorded["environments"] if recorded else requested_ids
    resuming = set(services.checkpoints.environments()) if recorded else set()
    targets, env_findings = revert_targets(envs, requested, policy, resuming)
    findings += env_findings
    policies = current_policies(services, targets, policy, recorded["policies"] if recorded else [])
    for current in policies.values():
        findings += policy_health_findings(current)

    # Plan
    plan = plan_moves(
        "revert",
        "unlink",
        change_id,
        requested_by,
        [EnvironmentRow.planned(e) for e in targets],
        findings,
        notes,
    )
    plan_rows = plan.rows
    keep_until = (services.checkpoints.step("keep_until") or {}).get("date") or until(
        started, REVERT_KEEP_KEY_DAYS
    )
    plan_md = plan_markdown(plan, policies, keep_until)
    if plan.blocking or dry_run or not plan_rows:
        return stop_before_change(
            change,
            f"Revert {change_id}",
            plan_md,
            plan_rows,
            plan.blocking,
            dry_run=dry_run,
            nothing_to_do="Nothing to revert: no environment uses a customer-managed key.",
        )
    if not recorded:
        services.checkpoints.finish_step(
            "plan",
            {
                "environments": [r.environment_id for r in plan_rows],
                "policies": [p.id for p in policies.values()],
            },
        )

    # Approve
    outcome = approve_once(
        change,
        approval_settings=approval_settings,
        description=f"## Approve reverting {len(plan_rows)} environment(s) to the Microsoft-managed key\n\n{plan_md}",
        gate=f"{FLOW}-unlink",
    )
    if not outcome.approved:
        return end_unapproved(change, f"Revert {change_id}", outcome, "No environment was unlinked.")

    # Apply, verify, report
    anchor = policy or next(iter(policies.values()))
    progress = Progress(
        len(plan_rows), f"Reverting {len(plan_rows)} environment(s) to the Microsoft-managed key"
    )
    result = run_waves(
        services,
        planned_environments(plan, "unlink"),
        "unlink",
        anchor,
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        timeout_seconds=operation_timeout_seconds,
        progress=progress,
    )
    rows = merge_plan(plan_rows, result.rows)
    record_keep_until(change, policies, keep_until)
    csv_path = publish_environment_table(change, rows)
    publish_change_reports(
        change,
        summary_markdown(change_id, rows, policies, outcome, keep_until, result.halt_reason, csv_path),
    )
    report = {
        "change_id": change_id,
        "rows": to_dicts(rows),
        "keep_key_until": keep_until,
        "policies": sorted(p.id for p in policies.values()),
        "csv": str(csv_path),
    }
    logger.info(
        "Revert %s finished: %s. Keep the key and access until %s.", change_id, counts_line(rows), keep_until
    )
    return finish(rows, result.halted, report)


def check_parameters(
    change_id: str,
    requested_by: str,
    environments: tuple[str, ...],
    policy_id: str,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    operation_timeout_seconds: int,
) -> tuple[list[str], list[str]]:
    """Refuse bad parameters before any request; the environment ids (duplicates removed) and the notes."""
    p = Parameters()
    p.change_id(change_id)
    p.requester(requested_by)
    if not environments and not (policy_id or "").strip():
        p.refuse("Give environments to revert, or policy_id to revert every environment of that policy.")
    if (policy_id or "").strip():
        p.policy_id(policy_id)
    env_ids = p.environment_ids(environments)
    p.waves(concurrency, canary_size, failure_threshold, MAX_CONCURRENCY)
    p.timeout(operation_timeout_seconds, "operation_timeout_seconds")
    p.done()
    return env_ids, p.notes


def current_policies(
    services: Services, targets: list[EnvironmentInfo], policy: PolicyInfo | None, recorded: list[str]
) -> dict[str, PolicyInfo]:
    """The policies the targets are (or, resuming, were) linked to, by lower-case ARM id (read once each)."""
    found: dict[str, PolicyInfo] = {policy.id.lower(): policy} if policy else {}
    linked = [env.cmk.policy_arm_id for env in targets if env.cmk]
    for arm_id in [*recorded, *linked]:
        if arm_id and arm_id.lower() not in found:
            read = read_policy(services, arm_id)
            if read is not None:
                found[arm_id.lower()] = read
    return found


def record_keep_until(change: Change, policies: dict[str, PolicyInfo], keep_until: str) -> None:
    """Journal (once per change) the date until which each policy's key and access must stay."""
    services = change.services
    if services.checkpoints.step("keep_until"):
        return
    services.checkpoints.finish_step("keep_until", {"date": keep_until})
    for policy in policies.values():
        services.journal.record(
            actor="revert-flow",
            action="revert.keep_key_until",
            target=policy.id,
            before=None,
            after={"keep_until": keep_until, "vault_id": policy.vault_id, "key_name": policy.key_name},
            change_id=change.change_id,
        )


def keep_section(policies: dict[str, PolicyInfo], keep_until: str) -> str:
    """What must not be deleted or disabled, and until when."""
    lines = [
        f"- Key `{p.key_name}` in vault `{(p.vault_id or '').rsplit('/', 1)[-1]}` and the access of policy "
        f"`{p.name}` to it"
        for p in policies.values()
    ]
    return (
        f"**Keep until {keep_until}** ({REVERT_KEEP_KEY_DAYS} days): do not delete or disable the key, delete or "
        "disable the vault, or remove the policy's permissions to the vault.\n" + "\n".join(lines)
    )


def plan_markdown(plan: ChangePlan, policies: dict[str, PolicyInfo], keep_until: str) -> str:
    """What this revert will change, for the approver and the dry-run report."""
    return (
        f"**Change** `{plan.change_id}` requested by **{plan.requested_by}**\n\n{plan.notes_markdown()}\n"
        f"- Environments to move to the Microsoft-managed key: **{len(plan.rows)}**\n"
        "- Each environment is disabled while it is unlinked.\n\n"
        f"{keep_section(policies, keep_until)}\n\n### Environments\n{environment_list(plan.rows)}\n\n"
        f"### Writes\n{plan.writes_markdown()}\n\n### Preflight\n{findings_section(plan.findings)}\n"
    )


def summary_markdown(
    change_id: str,
    rows: list[EnvironmentRow],
    policies: dict[str, PolicyInfo],
    outcome: Any,
    keep_until: str,
    halt_reason: str,
    csv_path: Any,
) -> str:
    """The final report."""
    return (
        f"# Revert {change_id}\n\n- Result: {counts_line(rows)}\n"
        + (f"- Halted: {halt_reason}\n" if halt_reason else "")
        + f"- CSV: `{csv_path}`\n\n## Keep the key\n{keep_section(policies, keep_until)}\n\n"
        f"## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n\n"
        f"## What to do next\n{next_steps(rows, change_id, FLOW)}\n"
    )
