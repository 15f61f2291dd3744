"""Onboarding: read what exists, plan every write, approve the plan, then make it in Microsoft's order and report."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.domain.rows import to_dicts
from cmk.plans.change import ChangePlan
from cmk.plans.onboarding import (
    CREATE_KEY,
    DEPLOY_POLICY,
    GRANT_KEY_ACCESS,
    GRANT_READER,
    MAKE_MANAGED,
    MAX_CONCURRENCY,
    PROVIDER,
    REGISTER_PROVIDER,
    SET_ROTATION_POLICY,
    OnboardingRequest,
    OnboardingState,
    key_target,
    onboarding_request,
    plan_from_dict,
    plan_onboarding,
    plan_to_dict,
    planned_links,
    planned_managed,
)
from flows.parts.approval import approve_once
from flows.parts.endings import end_unapproved, finish, publish_change_reports, stop_before_change
from flows.parts.fanout import merge_plan, run_waves
from flows.parts.onboarding_text import approval_markdown, plan_markdown, summary_markdown
from flows.parts.summaries import counts_line, findings_section
from tasks.access import grant_key_access, grant_policy_reader, read_key_role_assignments, read_reader_grants
from tasks.context import Services, open_change
from tasks.environments import read_environments
from tasks.governance import make_managed_environment
from tasks.keys import ensure_key, read_key, read_rotation_policy, set_rotation_policy
from tasks.policies import deploy_policy, find_policy, verify_policy_key_access, wait_policy_identity
from tasks.providers import read_provider_state, register_provider
from tasks.reports import Progress, publish_environment_table, publish_summary
from tasks.vaults import find_vault, read_vault

FLOW = "onboard"
NOTHING_CHANGED = "Nothing was changed: no provider, key, policy, grant or environment link was written."


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
    key_expires_in: str = "P2Y",
    key_rotate_after: str = "P18M",
    key_notify_before_expiry: str = "P30D",
    environments: tuple[str, ...] = (),
    make_managed: tuple[str, ...] = (),
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
        key_expires_in: ISO 8601 duration after which each key version expires (an expired key locks every environment).
        key_rotate_after: ISO 8601 duration after which Key Vault creates a new version; empty = only the rotate flow.
        key_notify_before_expiry: ISO 8601 duration before expiry at which Key Vault raises its near-expiry event.
        environments: Environment ids to link; leave empty for every eligible environment in the geo.
        make_managed: Environment ids (of those linked) to make Managed Environments first, after approval.
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
    request = onboarding_request(
        change_id=change_id,
        requested_by=requested_by,
        vault_id=vault_id,
        policy_name=policy_name,
        resource_group=resource_group,
        location=location,
        key_name=key_name,
        key_type=key_type,
        key_size=key_size,
        environments=environments,
        admin_object_id=powerplatform_admin_object_id,
        operation_timeout_seconds=operation_timeout_seconds,
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        key_expires_in=key_expires_in,
        key_rotate_after=key_rotate_after,
        key_notify_before_expiry=key_notify_before_expiry,
        make_managed=make_managed,
    )  # every parameter is checked before any request
    change = open_change(
        azure_connection,
        powerplatform_connection,
        flow=FLOW,
        change_id=request.change_id,
        requested_by=request.requested_by,
    )
    services = change.services
    request = replace(request, admin_object_id=request.admin_object_id or services.admin_object_id or "")
    change_id, title, started = request.change_id, f"Onboarding {request.change_id}", datetime.now(UTC)

    # Read (GET requests only) and plan. A re-run of an approved change applies the plan that was approved.
    plan = approved_plan(services)
    if plan is None:
        plan = plan_onboarding(request, read_state(services, request), started)
    else:
        logger.info("Resuming change %s with its approved plan: %d write(s).", change_id, len(plan.pending))
    plan_md = plan_markdown(plan, request, canary_size, concurrency)
    if plan.blocking or dry_run:
        extra = {"findings": [f.code for f in plan.findings], "writes": [w.line() for w in plan.pending]}
        return stop_before_change(
            change, title, plan_md, plan.rows, plan.blocking, dry_run=dry_run, extra=extra
        )

    # Approve: the form shows the whole plan; nothing has been written yet.
    services.checkpoints.finish_step("plan", plan_to_dict(plan))
    outcome = approve_once(
        change,
        approval_settings=approval_settings,
        description=approval_markdown(plan_md, plan),
        gate=FLOW,
    )
    if not outcome.approved:
        return end_unapproved(change, title, outcome, NOTHING_CHANGED)

    # Apply, in the order of Microsoft's procedure; each step is checkpointed and skipped by a re-run.
    vault = read_vault(services, request.vault_id)
    # Enable the Power Platform enterprise policies service for the subscription (once).
    if due(services, plan, "provider", REGISTER_PROVIDER, PROVIDER):
        services.checkpoints.finish_step("provider", {"state": register_provider(services)})
    # Create the key in the vault (or adopt the existing one).
    target = key_target(vault, vault.id, request.key_name)
    if due(services, plan, "key", CREATE_KEY, target):
        key = ensure_key(
            services, vault.uri, request.key_name, request.key_type, request.key_size, request.lifetime
        )
        services.checkpoints.finish_step("key", {"kid": key.kid})
    if request.lifetime and due(services, plan, "rotation-policy", SET_ROTATION_POLICY, target):
        set_rotation_policy(services, vault.uri, request.key_name, request.lifetime)
        services.checkpoints.finish_step("rotation-policy", {"policy": request.lifetime.detail()})
    key = read_key(services, vault.uri, request.key_name)
    if key is None:
        return Failed(
            message=f"Key {request.key_name} is not in vault {vault.name} any more; nothing was linked."
        )
    # Create the enterprise policy; its managed identity and systemId appear once it is deployed.
    policy_id = next(w.target for w in plan.writes if w.action == DEPLOY_POLICY)
    if due(services, plan, "policy", DEPLOY_POLICY, policy_id):
        deploy_policy(
            services,
            request.resource_group,
            request.policy_name,
            request.location,
            vault.id,
            request.key_name,
        )
    policy = wait_policy_identity(services, policy_id)
    services.checkpoints.finish_step("policy", {"id": policy.id, "system_id": policy.system_id})
    # Grant the enterprise policy access to the key vault.
    if due(services, plan, "key-access", GRANT_KEY_ACCESS, vault.id):
        services.checkpoints.finish_step("key-access", {"how": grant_key_access(services, vault, policy)})
    # Grant the Power Platform administrator permission to read the enterprise policy.
    if request.admin_object_id and due(services, plan, "reader", GRANT_READER, policy.id):
        grant_policy_reader(services, policy, request.admin_object_id)
        services.checkpoints.finish_step("reader", {"principal": request.admin_object_id})
    # The identity must be able to use the key before any environment is linked.
    access = verify_policy_key_access(services, vault.id, policy, key, request.admin_object_id or None)
    if any(f.severity == "blocking" for f in access):
        publish_summary(
            change,
            "# Onboarding stopped before linking\n\nThe policy identity cannot use the key:\n\n"
            + findings_section(access),
        )
        return Failed(
            message="The enterprise policy's identity cannot use the key; see the summary artifact."
        )
    # Make the asked environments Managed Environments (a CMK prerequisite), each verified, before any link.
    for env_id in planned_managed(plan):
        if due(services, plan, f"managed-{env_id}", MAKE_MANAGED, env_id):
            make_managed_environment(services, env_id, timeout_seconds=operation_timeout_seconds)
            services.checkpoints.finish_step(f"managed-{env_id}", {"managed": True})
    # Add the environments to the enterprise policy, in waves.
    env_ids = planned_links(plan)
    result = run_waves(
        services,
        env_ids,
        "link",
        policy,
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        timeout_seconds=operation_timeout_seconds,
        progress=Progress(len(env_ids), f"Linking {len(env_ids)} environment(s) to {policy.name}"),
    )

    # Verify and report.
    rows = merge_plan(plan.rows, result.rows)
    csv_path = publish_environment_table(change, rows)
    finished = datetime.now(UTC)
    summary = summary_markdown(
        change_id, policy.name, policy.system_id, key.version, rows, outcome, started, finished,
        result.halt_reason, csv_path,
    )  # fmt: skip
    publish_change_reports(change, summary)
    logger.info("Onboarding %s finished: %s", change_id, counts_line(rows))
    report = {
        "change_id": change_id,
        "policy_id": policy.id,
        "system_id": policy.system_id,
        "key_version": key.version,
        "rows": to_dicts(rows),
        "halted": result.halted,
        "csv": str(csv_path),
    }
    return finish(rows, result.halted, report)


def read_state(services: Services, request: OnboardingRequest) -> OnboardingState:
    """Everything the plan needs, read with GET requests only."""
    vault = find_vault(services, request.vault_id)
    policy_id, policy = find_policy(services, request.resource_group, request.policy_name)
    return OnboardingState(
        policy_id=policy_id,
        vault=vault,
        key=read_key(services, vault.uri, request.key_name) if vault else None,
        policy=policy,
        provider_state=read_provider_state(services),
        environments=read_environments(services),
        key_access=read_key_role_assignments(services, vault, policy.principal_id if policy else None)
        if vault
        else [],
        reader_grants=read_reader_grants(services, policy, request.admin_object_id),
        rotation=read_rotation_policy(services, vault.uri, request.key_name) if vault else None,
    )


def approved_plan(services: Services) -> ChangePlan | None:
    """The plan an earlier run of this change recorded and got approved, or None."""
    recorded = services.checkpoints.step("plan")
    if recorded and services.checkpoints.step("approval"):
        return plan_from_dict(recorded)
    return None


def due(services: Services, plan: ChangePlan, step: str, action: str, target: str) -> bool:
    """Whether this write must be made now: pending in the plan and not finished by an earlier run."""
    return plan.permits(action, target) and not services.checkpoints.step(step)
