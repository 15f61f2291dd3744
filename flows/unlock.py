"""Unlock: restore exactly the key access a lock removed, wait for a Healthy policy, re-enable and verify environments."""

from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from blocks import DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.checkpoints import validate_change_id
from cmk.errors import CmkError
from cmk.lockdown import Grant, linked_to, restore_targets
from cmk.models import PolicyInfo
from cmk.resource_ids import parse_policy_id
from flows.lock import RESTORED, REVOKED
from flows.summaries import counts_line
from tasks.context import Services, connect
from tasks.environments import read_environments
from tasks.lock_reports import publish_outcome
from tasks.lockdown import read_policy, restore_grant, wait_policy_health
from tasks.reenable import reenable_environment
from tasks.reports import publish_journal, publish_summary

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
    health_timeout_seconds: int = 900,
    operation_timeout_seconds: int = 1800,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
) -> dict[str, Any]:
    """Bring a locked enterprise policy's environments back online: restore the original key access, then re-enable.

    Args:
        change_id: Your change number for this unlock (not the lock's); re-running with it resumes safely.
        requested_by: Who asks for this unlock.
        lock_change_id: Change id of the lock to undo; the access it removed is read back from the audit journal.
        policy_id: ARM id of the locked policy; needed only when grants are given explicitly.
        grants: The access to restore, when no lock journal exists (same fields as the lock journal's entries).
        environments: Environment ids to re-enable; empty = every environment the lock took offline.
        concurrency: How many environments are re-enabled at the same time.
        health_timeout_seconds: How long to wait for the policy to report Healthy after access is restored.
        operation_timeout_seconds: How long to wait for one environment's re-enable.
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
    """
    logger = get_run_logger()
    validate_inputs(change_id, requested_by, lock_change_id, policy_id, grants, concurrency)
    services = connect(azure_connection, powerplatform_connection, change_id=change_id, flow=FLOW)
    restore, policy_id, blast = what_to_restore(services, lock_change_id, policy_id, grants)
    policy = read_policy(services, policy_id)
    if policy is None:
        return Failed(
            message=f"Enterprise policy {policy_id} does not exist or cannot be read. Nothing was changed."
        )
    foreign = [
        g
        for g in restore
        if g.method != "disable_key" and g.principal_id.lower() != (policy.principal_id or "").lower()
    ]
    if foreign:
        return Failed(
            message="Refusing to restore access for another identity than the policy's "
            f"({policy.principal_id}): {'; '.join(g.describe() for g in foreign)}. Nothing was changed."
        )

    restore_all(services, change_id, lock_change_id, policy, restore, requested_by)
    try:
        policy = wait_policy_health(services, policy.id, "Healthy", health_timeout_seconds)
    except CmkError as exc:
        publish_summary(FLOW, change_id, unhealthy_markdown(change_id, policy.name, restore, str(exc)))
        return Failed(message=f"Access was restored but the policy is not Healthy: {exc}")

    envs = read_environments(services)
    targets = [e.strip() for e in environments] if environments else restore_targets(blast, envs, policy)
    rows = reenable_all(services, targets, concurrency, operation_timeout_seconds)
    rows = verify_online(services, policy, rows)
    csv_path = publish_outcome(FLOW, change_id, rows)
    publish_summary(
        FLOW, change_id, summary_markdown(change_id, lock_change_id, policy.name, restore, rows, csv_path)
    )
    publish_journal(FLOW, change_id, services.journal.entries(change_id=change_id))
    report = {
        "change_id": change_id,
        "lock_change_id": lock_change_id,
        "policy_id": policy.id,
        "policy_health": policy.health,
        "restored": [g.to_dict() for g in restore],
        "rows": rows,
        "csv": str(csv_path),
    }
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        return Failed(
            message=f"{len(failed)} environment(s) are not back online; {counts_line(rows)}.", data=report
        )
    logger.info("Policy %s is Healthy and %d environment(s) are online.", policy.name, len(rows))
    return report


def validate_inputs(
    change_id: str,
    requested_by: str,
    lock_change_id: str | None,
    policy_id: str | None,
    grants: list[dict[str, Any]] | None,
    concurrency: int,
) -> None:
    """Refuse bad parameters before anything is read or changed."""
    validate_change_id(change_id)
    if not requested_by.strip():
        raise ValueError("requested_by is empty: say who asks for this unlock.")
    if bool(lock_change_id) == bool(grants):
        raise ValueError(
            "Give either lock_change_id (the access is read back from that lock's journal) or grants "
            "(with policy_id), not both and not neither."
        )
    if lock_change_id:
        validate_change_id(lock_change_id)
        if lock_change_id == change_id:
            raise ValueError("change_id must be a new change id for this unlock, not the lock's change id.")
    if grants:
        if not policy_id:
            raise ValueError("policy_id is required when grants are given explicitly.")
        for grant in grants:
            Grant.from_dict(grant)
    if policy_id:
        parse_policy_id(policy_id)
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}; got {concurrency}.")


def what_to_restore(
    services: Services, lock_change_id: str | None, policy_id: str | None, grants: list[dict[str, Any]] | None
) -> tuple[list[Grant], str, list[dict[str, Any]]]:
    """The grants to restore, the policy id and the lock's blast radius (from the lock's journal, or as given)."""
    if grants:
        return [Grant.from_dict(g) for g in grants], policy_id or "", []
    entries = services.journal.entries(change_id=lock_change_id, action=REVOKED)
    if not entries:
        raise ValueError(
            f"The audit journal has no revoked access for lock change {lock_change_id}: check the change id, or "
            "pass the access to restore as grants with policy_id."
        )
    recorded_policy = entries[0]["target"]
    if policy_id and policy_id.lower() != recorded_policy.lower():
        raise ValueError(f"Lock {lock_change_id} locked {recorded_policy}, not {policy_id}.")
    restore = []
    for entry in entries:
        grant = Grant.from_dict(entry["before"])
        if grant not in restore:
            restore.append(grant)
    blast = [{"environment_id": e} for e in (entries[0].get("detail") or {}).get("blast_radius", [])]
    return restore, recorded_policy, blast


def restore_all(
    services: Services,
    change_id: str,
    lock_change_id: str | None,
    policy: PolicyInfo,
    grants: list[Grant],
    requested_by: str,
) -> None:
    """Restore each grant once and journal it, for whom (which also marks the lock as undone)."""
    if services.checkpoints.step("restore"):
        get_run_logger().info("Key access of change %s was restored in an earlier run; not again.", change_id)
        return
    for grant in grants:
        changed = restore_grant(services, grant)
        services.journal.record(
            actor=requested_by,
            action=RESTORED,
            target=policy.id,
            before=None,
            after=grant.to_dict(),
            change_id=change_id,
            detail={"changed": changed, "lock_change_id": lock_change_id},
        )
    services.checkpoints.finish_step("restore", {"grants": [g.to_dict() for g in grants]})


def reenable_all(
    services: Services, env_ids: list[str], concurrency: int, timeout_seconds: float
) -> list[dict[str, Any]]:
    """Re-enable environments with at most `concurrency` in flight; every environment gets a row."""
    pending = list(dict.fromkeys(env_ids))
    active: dict[PrefectFuture[dict[str, Any]], str] = {}
    rows: list[dict[str, Any]] = []
    while pending or active:
        while pending and len(active) < concurrency:
            env_id = pending.pop(0)
            active[reenable_environment.submit(services, env_id, timeout_seconds=timeout_seconds)] = env_id
        finished = next(as_completed(list(active)))
        env_id = active.pop(finished)
        try:
            rows.append(finished.result())
        except Exception as exc:
            rows.append(
                {"environment_id": env_id, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            )
    return rows


def verify_online(services: Services, policy: PolicyInfo, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-read every environment: Enabled and still linked to its customer-managed key policy.

    That is this policy, or (when the lock disabled a shared key) another policy using the same key.
    """
    current = {e.id.lower(): e for e in services.powerplatform.list_environments()}
    out = []
    for row in rows:
        env = current.get(row["environment_id"].lower())
        problems = []
        if env is None:
            problems.append("not found")
        else:
            if (env.runtime_state or "").lower() != "enabled":
                problems.append(f"runtime is {env.runtime_state}")
            if not (linked_to(env, policy) or (env.cmk and (env.cmk.status or "").lower() == "linked")):
                problems.append(f"no longer linked to {policy.name} or any customer-managed key policy")
        if problems and row["status"] != "failed":
            row = {**row, "status": "failed", "error": "verification: " + "; ".join(problems)}
        linked_policy = (env.cmk.policy_arm_id or "").rsplit("/", 1)[-1] if env and env.cmk else ""
        out.append(
            {
                **row,
                "runtime_after": env.runtime_state if env else "missing",
                "policy": row.get("policy") or linked_policy,
            }
        )
    return out


def unhealthy_markdown(change_id: str, policy_name: str, grants: list[Grant], error: str) -> str:
    """The report when access was restored but the policy did not turn Healthy."""
    restored = "\n".join(f"- {g.describe()}" for g in grants)
    return (
        f"# Unlock {change_id}: policy `{policy_name}` is not Healthy\n\nRestored:\n{restored}\n\n{error}\n\n"
        "No environment was re-enabled. Check the key (enabled, not expired) and the vault's network rules, then "
        "run unlock again with the same change id.\n"
    )


def summary_markdown(
    change_id: str,
    lock_change_id: str | None,
    policy_name: str,
    grants: list[Grant],
    rows: list[dict[str, Any]],
    csv_path: Any,
) -> str:
    """The final report."""
    restored = "\n".join(f"- {g.describe()}" for g in grants)
    failed = [r for r in rows if r["status"] == "failed"]
    source = f"the journal of lock `{lock_change_id}`" if lock_change_id else "the grants given"
    return (
        f"# Unlock {change_id}: policy `{policy_name}`\n\n- Access restored from {source}:\n{restored}\n"
        f"- Policy health: Healthy\n- Environments: {counts_line(rows)}\n- CSV: `{csv_path}`\n\n"
        + (
            "Verified: every environment is Enabled and still linked to the policy.\n"
            if not failed
            else "**Not back online**:\n"
            + "\n".join(f"- `{r['environment_id']}`: {r.get('error', '')}" for r in failed)
            + f"\n\nFix the cause and run unlock again with change id `{change_id}`.\n"
        )
    )
