"""Onboarding: key, enterprise policy, grants, approval, then link environments in waves, verify, report."""

from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.checkpoints import validate_change_id
from cmk.preflight import Finding
from cmk.resource_ids import parse_vault_id
from flows.endings import end_unapproved, finish, publish_change_reports, stop_before_change
from flows.fanout import merge_plan, plan_row, run_waves
from flows.gates import approve_once
from flows.summaries import approvals_section, counts_line, environment_list, findings_section, next_steps
from tasks.context import connect
from tasks.environments import read_environments
from tasks.onboarding import (
    deploy_policy,
    ensure_key,
    grant_key_access,
    grant_policy_reader,
    read_vault,
    register_provider,
    wait_policy_identity,
)
from tasks.preflight import preflight_onboarding, verify_policy_key_access
from tasks.reports import Progress, publish_environment_table, publish_summary

FLOW = "onboard"
MAX_CONCURRENCY = 32


@flow(name=FLOW, log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY))
def onboard(
    change_id: str,
    requested_by: str,
    vault_id: str,
    policy_name: str,
    resource_group: str,
    location: str,
    key_name: str = "pp-cmk-key",
    key_type: Literal["RSA", "RSA-HSM"] = "RSA",
    key_size: Literal[2048, 3072] = 2048,
    environments: tuple[str, ...] = (),
    powerplatform_admin_object_id: str = "",
    concurrency: int = 4,
    canary_size: int = 1,
    failure_threshold: int = 1,
    dry_run: bool = False,
    operation_timeout_seconds: int = 4 * 3600,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
    approval_settings: str = DEFAULT_APPROVAL_BLOCK,
) -> dict[str, Any]:
    """Encrypt Power Platform environments with a customer-managed key.

    Args:
        change_id: Your change number; re-running with the same id resumes the change safely.
        requested_by: Who asks for this change; they cannot approve it themselves.
        vault_id: ARM id of the Key Vault (soft delete and purge protection must be on).
        policy_name: Name of the Encryption enterprise policy to create or reuse.
        resource_group: Resource group for the enterprise policy.
        location: Power Platform geo of the policy and the environments, e.g. europe or unitedstates.
        key_name: Key to create in the vault, or an existing RSA key to adopt.
        key_type: RSA (software) or RSA-HSM (premium vault).
        key_size: Key size in bits; Power Platform accepts 2048 or 3072.
        environments: Environment ids to link; leave empty for every eligible environment in the geo.
        powerplatform_admin_object_id: Object id of the Power Platform admin to get Reader on the policy; empty = from the connection block.
        concurrency: How many environments are linked at the same time.
        canary_size: How many environments go first, alone, before the rest.
        failure_threshold: Stop starting new environments after this many failures (0 = never stop).
        dry_run: Only check and plan; change nothing.
        operation_timeout_seconds: How long to wait for one environment's link (encryption can take hours).
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
        approval_settings: Name of the approval settings block.
    """
    logger = get_run_logger()
    validate_inputs(change_id, requested_by, vault_id, concurrency, canary_size, failure_threshold)
    services = connect(azure_connection, powerplatform_connection, change_id=change_id, flow=FLOW)
    admin_object_id = powerplatform_admin_object_id or services.admin_object_id
    started = datetime.now(UTC)

    vault = read_vault(services, vault_id)
    all_envs = read_environments(services)
    recorded = services.checkpoints.step("plan")
    if recorded:
        logger.info(
            "Resuming change %s: %d environment(s) from its recorded plan.",
            change_id,
            len(recorded["environments"]),
        )
    findings, targets = preflight_onboarding(
        services,
        vault,
        all_envs,
        location=location,
        key_name=key_name,
        key_type=key_type,
        key_size=key_size,
        requested=recorded["environments"] if recorded else list(environments),
        admin_object_id=admin_object_id,
        resuming=set(services.checkpoints.environments()) if recorded else set(),
    )
    plan_rows = [plan_row(e) for e in targets]
    blocking = [f for f in findings if f.severity == "blocking"]
    plan_md = plan_markdown(
        change_id,
        requested_by,
        vault_id,
        key_name,
        key_type,
        key_size,
        policy_name,
        resource_group,
        location,
        plan_rows,
        findings,
        canary_size,
        concurrency,
    )
    if blocking or dry_run:
        return stop_before_change(
            FLOW,
            change_id,
            f"Onboarding {change_id}",
            plan_md,
            plan_rows,
            blocking,
            dry_run=dry_run,
            extra={"findings": [f.code for f in findings]},
        )

    if not recorded:
        services.checkpoints.finish_step("plan", {"environments": [r["environment_id"] for r in plan_rows]})
    register_provider(services)
    key = ensure_key(services, vault.uri, key_name, key_type, key_size)
    policy = deploy_policy(services, resource_group, policy_name, location, vault.id, key_name)
    policy = wait_policy_identity(services, policy.id)
    grant_key_access(services, vault, policy)
    if admin_object_id:
        grant_policy_reader(services, policy, admin_object_id)
    access_findings = verify_policy_key_access(services, vault.id, policy, key)
    if any(f.severity == "blocking" for f in access_findings):
        publish_summary(
            FLOW,
            change_id,
            "# Onboarding stopped\n\nThe policy identity cannot use the key:\n\n"
            + findings_section(access_findings),
        )
        return Failed(
            message="The enterprise policy's identity cannot use the key; see the summary artifact."
        )

    outcome = approve_once(
        services,
        change_id=change_id,
        requested_by=requested_by,
        approval_settings=approval_settings,
        description=approval_markdown(plan_md, policy.system_id, len(plan_rows)),
        gate=f"{FLOW}-link",
    )
    if not outcome.approved:
        return end_unapproved(
            services, FLOW, change_id, f"Onboarding {change_id}", outcome, "No environment was linked."
        )

    progress = Progress(len(plan_rows), f"Linking {len(plan_rows)} environment(s) to {policy.name}")
    result = run_waves(
        services,
        [r["environment_id"] for r in plan_rows],
        "link",
        policy,
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        timeout_seconds=operation_timeout_seconds,
        progress=progress,
    )
    rows = merge_plan(plan_rows, result.rows)
    csv_path = publish_environment_table(FLOW, change_id, rows)
    finished = datetime.now(UTC)
    summary = summary_markdown(
        change_id,
        policy.name,
        policy.system_id,
        key.version,
        rows,
        outcome,
        started,
        finished,
        result.halt_reason,
        csv_path,
    )
    publish_change_reports(services, FLOW, change_id, summary)
    logger.info("Onboarding %s finished: %s", change_id, counts_line(rows))
    report = {
        "change_id": change_id,
        "policy_id": policy.id,
        "system_id": policy.system_id,
        "key_version": key.version,
        "rows": rows,
        "halted": result.halted,
        "csv": str(csv_path),
    }
    return finish(rows, result.halted, report)


def validate_inputs(
    change_id: str,
    requested_by: str,
    vault_id: str,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
) -> None:
    """Refuse bad parameters before anything is read or changed."""
    validate_change_id(change_id)
    if not requested_by.strip():
        raise ValueError("requested_by is empty: say who asks for this change (they cannot approve it).")
    parse_vault_id(vault_id)
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}; got {concurrency}.")
    if canary_size < 0 or failure_threshold < 0:
        raise ValueError("canary_size and failure_threshold must be 0 or more.")


def plan_markdown(
    change_id: str,
    requested_by: str,
    vault_id: str,
    key_name: str,
    key_type: str,
    key_size: int,
    policy_name: str,
    resource_group: str,
    location: str,
    rows: list[dict[str, Any]],
    findings: list[Finding],
    canary_size: int,
    concurrency: int,
) -> str:
    """What this onboarding will change, for the approver and the dry-run report."""
    return (
        f"**Change** `{change_id}` requested by **{requested_by}**\n\n"
        f"- Key: `{key_name}` ({key_type} {key_size}) in vault `{vault_id.rsplit('/', 1)[-1]}`\n"
        f"- Enterprise policy: `{policy_name}` in resource group `{resource_group}`, geo `{location}`\n"
        f"- Environments to encrypt: **{len(rows)}**, canary {canary_size} first, then {concurrency} at a time\n"
        "- Expected downtime: each environment is briefly disabled while it is linked; encryption then "
        "continues in the background.\n\n"
        f"### Environments\n{environment_list(rows)}\n\n### Preflight\n{findings_section(findings)}\n"
    )


def approval_markdown(plan_md: str, system_id: str, count: int) -> str:
    """The approval form's description."""
    return (
        f"## Approve linking {count} environment(s) to a customer-managed key\n\n{plan_md}\n"
        f"Policy systemId: `{system_id}`\n\nApprove to start linking, or reject with a comment."
    )


def summary_markdown(
    change_id: str,
    policy_name: str,
    system_id: str,
    key_version: str,
    rows: list[dict[str, Any]],
    outcome: Any,
    started: datetime,
    finished: datetime,
    halt_reason: str,
    csv_path: Any,
) -> str:
    """The final report."""
    return (
        f"# Onboarding {change_id}\n\n"
        f"- Policy `{policy_name}` (systemId `{system_id}`), key version `{key_version}`\n"
        f"- Started {started.isoformat(timespec='seconds')}, finished {finished.isoformat(timespec='seconds')} "
        f"({(finished - started).total_seconds():.0f} s)\n- Result: {counts_line(rows)}\n"
        + (f"- Halted: {halt_reason}\n" if halt_reason else "")
        + f"- CSV: `{csv_path}`\n\n## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n\n"
        f"## What to do next\n{next_steps(rows, change_id, FLOW)}\n"
    )
