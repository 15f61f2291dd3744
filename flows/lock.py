"""Decommission lock: blast radius first, two approvals and the typed policy name, then revoke key access and verify."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.states import Failed

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.errors import CmkError
from cmk.plans.change import ChangePlan
from cmk.plans.lockdown import (
    REVOKE_ACTIONS,
    REVOKE_METHODS,
    Grant,
    LockRow,
    blast_radius,
    default_method,
    plan_lock,
    plan_revocation,
)
from cmk.preflight.parameters import Parameters
from flows.parts.approval import approve_once
from flows.parts.endings import end_unapproved
from flows.parts.lock_text import lock_approval_markdown, lock_plan_markdown, lock_summary_markdown
from flows.parts.summaries import approvals_section
from tasks.access import read_key_role_assignments, revoke_grant
from tasks.context import Change, Services, open_change
from tasks.environments import read_environments, wait_environments_runtime
from tasks.keys import read_key
from tasks.policies import read_policies_sharing_key, read_policy, wait_policy_health
from tasks.reports import publish_blast_radius, publish_journal, publish_outcome, publish_summary
from tasks.vaults import read_vault

FLOW = "lock"
REVOKED = "lock.access_revoked"
RESTORED = "unlock.access_restored"


@flow(name=FLOW, log_prints=True)
def lock(
    change_id: str,
    requested_by: str,
    policy_id: str,
    method: Literal["auto", "access_policy", "role_assignment", "disable_key"] = "auto",
    dry_run: bool = False,
    lock_timeout_seconds: int = 3600,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
    approval_settings: str = DEFAULT_APPROVAL_BLOCK,
) -> dict[str, Any]:
    """Take every environment of an enterprise policy offline by revoking the policy's key access (decommission).

    Never deletes the key, the vault or the policy. Needs two approvals from two people other than the requester,
    each typing the policy name back exactly. Undo with the unlock flow and this change id.

    Args:
        change_id: Your change number; re-running with the same id resumes and never revokes twice.
        requested_by: Who asks for this lock; they cannot approve it.
        policy_id: ARM id of the Encryption enterprise policy whose environments go offline.
        method: How to revoke: auto (access policy or role, by the vault's permission model), access_policy, role_assignment or disable_key (disables the key version the policy uses).
        dry_run: Only show the blast radius and what would be revoked; change nothing.
        lock_timeout_seconds: How long to wait for the policy to turn Unhealthy and its environments to go offline.
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
        approval_settings: Name of the approval settings block.
    """
    logger = get_run_logger()
    change_id, requested_by, policy_id = check_parameters(
        change_id, requested_by, policy_id, method, lock_timeout_seconds
    )
    change = open_change(
        azure_connection, powerplatform_connection, flow=FLOW, change_id=change_id, requested_by=requested_by
    )
    services = change.services
    undone_by = unlocked_by(change)
    if undone_by:
        return Failed(
            message=f"Lock {change_id} was undone by unlock change {undone_by}; start a new change id to lock "
            "this policy again. Nothing was changed."
        )

    # Read
    policy = read_policy(services, policy_id)
    if policy is None:
        return Failed(
            message=f"Enterprise policy {policy_id} does not exist or cannot be read. Nothing was changed."
        )
    if policy.kind.lower() != "encryption" or not policy.vault_id:
        return Failed(
            message=f"Policy {policy.name} is not an Encryption policy with a key vault. Nothing was changed."
        )
    recorded = services.checkpoints.step("plan")
    if recorded:
        locked_at = datetime.fromisoformat(recorded["locked_at"])
        blast = [LockRow.of(r) for r in recorded["blast_radius"]]
        grants = [Grant.from_dict(g) for g in recorded["grants"]]
        chosen, reason = recorded["method"], None
        logger.info("Resuming lock %s from its recorded plan.", change_id)
    else:
        locked_at = datetime.now(UTC)
        vault = read_vault(services, policy.vault_id)
        chosen = default_method(vault) if method == "auto" else method
        # Disabling a key also locks every other policy that uses the same key.
        affected = read_policies_sharing_key(services, policy) if chosen == "disable_key" else [policy]
        envs = read_environments(services)
        blast = [row for p in affected for row in blast_radius(envs, p, locked_at, policy_name=p.name)]
        assignments = read_key_role_assignments(services, vault, policy.principal_id)
        key = (
            read_key(services, vault.uri, policy.key_name, policy.key_version or None)
            if chosen == "disable_key" and policy.key_name
            else None
        )
        grants, reason = plan_revocation(chosen, vault, policy, assignments, key)

    # Plan
    revoked = bool(services.checkpoints.step("revoke"))
    plan = plan_lock(change_id, requested_by, policy, chosen, grants, reason, blast, revoked=revoked)
    plan_md = lock_plan_markdown(plan, policy.name, chosen)
    blast_csv = publish_blast_radius(change, blast)
    if plan.blocking or dry_run:
        verdict = (
            f"**Stopped before any change**: {reason}."
            if reason
            else "Dry run: nothing was changed. This is what an approved lock would take offline."
        )
        publish_summary(change, f"# Lock {change_id}: plan\n\n{verdict}\n\n{plan_md}")
        if plan.blocking:
            return Failed(message=f"Cannot lock {policy.name} by {chosen}: {reason}. Nothing was changed.")
        return {
            "change_id": change_id,
            "dry_run": True,
            "policy_id": policy.id,
            "blast_radius": [r.blast_dict() for r in blast],
            "would_revoke": [g.to_dict() for g in grants],
            "writes": [w.line() for w in plan.pending],
            "csv": str(blast_csv),
        }
    if not recorded:
        services.checkpoints.finish_step(
            "plan",
            {
                "locked_at": locked_at.isoformat(),
                "blast_radius": [r.blast_dict() for r in blast],
                "grants": [g.to_dict() for g in grants],
                "method": chosen,
            },
        )

    # Approve
    outcome = approve_once(
        change,
        approval_settings=approval_settings,
        description=lock_approval_markdown(policy.name, len(blast), plan_md),
        gate=f"{FLOW}-revoke",
        required_approvals=2,
        confirmation=policy.name,
    )
    if not outcome.approved:
        nothing = "No key access was revoked; every environment stays online."
        return end_unapproved(
            change,
            f"Lock {change_id}",
            outcome,
            nothing,
            summary_md=f"# Lock {change_id}: {outcome.status}\n\n{nothing} Reason: {outcome.reason}\n\n"
            f"## Approvals\n{approvals_section(outcome.approvals, outcome.refusals)}\n\n{plan_md}",
        )

    # Apply, verify, report
    revoke_all(change, plan, policy.id, grants, blast)
    health, rows, problems = verify_locked(services, policy.id, blast, lock_timeout_seconds)
    csv_path = publish_outcome(change, rows)
    summary = lock_summary_markdown(
        change_id, policy.name, health, rows, problems, outcome, plan_md, csv_path
    )
    publish_summary(change, summary)
    publish_journal(change)
    report = {
        "change_id": change_id,
        "policy_id": policy.id,
        "policy_health": health,
        "revoked": [g.to_dict() for g in grants],
        "rows": [r.to_dict() for r in rows],
        "csv": str(csv_path),
        "blast_radius_csv": str(blast_csv),
    }
    if problems:
        return Failed(message="Lock verification failed: " + "; ".join(problems), data=report)
    logger.warning("Policy %s is locked: %d environment(s) offline.", policy.name, len(rows))
    return report


def check_parameters(
    change_id: str, requested_by: str, policy_id: str, method: str, lock_timeout_seconds: int
) -> tuple[str, str, str]:
    """Refuse bad parameters before any request; the cleaned change id, requester and policy id."""
    p = Parameters()
    change_id = p.change_id(change_id)
    requested_by = p.requester(requested_by)
    p.policy_id(policy_id)
    if method != "auto" and method not in REVOKE_METHODS:
        p.refuse(f"method must be auto, access_policy, role_assignment or disable_key; got {method!r}.")
    p.timeout(lock_timeout_seconds, "lock_timeout_seconds")
    p.done()
    return change_id, requested_by, policy_id.strip()


def unlocked_by(change: Change) -> str | None:
    """The unlock change that restored this lock's access, if any."""
    for entry in change.services.journal.entries(action=RESTORED):
        if (entry.get("detail") or {}).get("lock_change_id") == change.change_id:
            return entry.get("change_id")
    return None


def revoke_all(
    change: Change, plan: ChangePlan, policy_id: str, grants: list[Grant], blast: list[LockRow]
) -> None:
    """Remove each grant once and journal exactly what was removed (and for whom), so unlock can restore it."""
    services, change_id = change.services, change.change_id
    done = services.checkpoints.step("revoke")
    if done:
        get_run_logger().info("Key access of change %s was revoked in an earlier run; not again.", change_id)
        return
    journaled = {
        json.dumps(e.get("before"), sort_keys=True)
        for e in services.journal.entries(change_id=change_id, action=REVOKED)
    }
    for grant in grants:
        plan.require(REVOKE_ACTIONS[grant.method], grant.target)
        changed = revoke_grant(services, grant)
        if json.dumps(grant.to_dict(), sort_keys=True) in journaled:
            continue  # an interrupted earlier run removed and journaled it already
        services.journal.record(
            actor=change.requested_by,
            action=REVOKED,
            target=policy_id,
            before=grant.to_dict(),
            after=None,
            change_id=change_id,
            detail={
                "changed": changed,
                "policy_id": policy_id,
                "blast_radius": [row.environment_id for row in blast],
            },
        )
    services.checkpoints.finish_step("revoke", {"grants": [g.to_dict() for g in grants]})


def verify_locked(
    services: Services, policy_id: str, blast: list[LockRow], timeout_seconds: float
) -> tuple[str, list[LockRow], list[str]]:
    """Wait for the policy to turn Unhealthy and each environment to go offline; rows and any problems."""
    problems: list[str] = []
    try:
        health = wait_policy_health(services, policy_id, "Unhealthy", timeout_seconds).health or ""
    except CmkError as exc:
        health = "not Unhealthy"
        problems.append(str(exc))
    seen = wait_environments_runtime(
        services, [row.environment_id for row in blast], "Disabled", timeout_seconds
    )
    rows = []
    for row in blast:
        env = seen.get(row.environment_id.lower())
        runtime = (env.runtime_state or "") if env else "missing"
        offline = (runtime or "").lower() == "disabled"
        if not offline:
            problems.append(f"{row.name} ({row.environment_id}) is still {runtime}")
        rows.append(
            replace(
                row,
                runtime_after=runtime,
                status="offline" if offline else "failed",
                error="" if offline else f"still {runtime} after {timeout_seconds:g} s",
            )
        )
    return health, rows, problems
