"""Rotation by a new key version: the policy follows its version-less key, so no environment is written to.

read the policy's vault, key and environments -> plan the one key write -> approve -> create the version (or
adopt the one a rotation policy made) -> verify the environments and the identity's access -> record when the
previous version may be retired -> report.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from prefect import get_run_logger
from prefect.states import Failed

from cmk.domain import grace
from cmk.domain.models import KeyInfo, KeyLifetime, PolicyInfo
from cmk.domain.rows import EnvironmentRow, to_dicts
from cmk.plans.rotation import (
    CREATE_KEY_VERSION,
    FLOW,
    SET_ROTATION_POLICY,
    KeyVersionPlan,
    KeyVersionState,
    key_label,
    key_target,
    plan_key_version,
)
from cmk.state.key_retirements import RETIREMENTS_FILE
from flows.parts.endings import publish_change_reports
from flows.parts.rotation_gate import approve_plan, not_approved, stop_before_writes
from flows.parts.rotation_records import record_key_version_retirement
from flows.parts.rotation_text import plan_markdown, summary_markdown
from flows.parts.summaries import counts_line
from tasks.access import read_key_role_assignments
from tasks.context import Change, Services
from tasks.environments import read_environments, verify_linked_environments
from tasks.keys import (
    create_key_version,
    list_key_versions,
    read_key,
    read_rotation_policy,
    set_rotation_policy,
)
from tasks.policies import read_policy, verify_policy_key_access
from tasks.reports import publish_environment_table
from tasks.vaults import read_vault


def rotate_key_version(
    change: Change,
    policy: PolicyInfo,
    *,
    create_new_version: bool,
    approval_settings: str,
    dry_run: bool,
    notes: Sequence[str] = (),
    lifetime: KeyLifetime | None = None,
) -> Any:
    """New key version, environments verified healthy, previous version kept and its retire date recorded."""
    started, services, change_id = grace.utc_now(), change.services, change.change_id
    # read
    vault = read_vault(services, policy.vault_id or "")
    key_name = policy.key_name or ""
    recorded = services.checkpoints.step("new_version") or services.checkpoints.step("new_version_started")
    adopting = not create_new_version and recorded is None
    state = KeyVersionState(
        policy=policy,
        vault=vault,
        current=read_key(services, vault.uri, key_name),
        environments=read_environments(services),
        assignments=read_key_role_assignments(services, vault, policy.principal_id),
        versions=list_key_versions(services, vault.uri, key_name) if adopting else None,
        recorded_previous=recorded["previous"] if recorded else None,
        rotation=read_rotation_policy(services, vault.uri, key_name) if lifetime else None,
    )
    # plan
    kv = plan_key_version(
        state,
        change_id=change_id,
        requested_by=change.requested_by,
        create_new_version=create_new_version,
        notes=notes,
        lifetime=lifetime,
    )
    plan_md = plan_markdown(kv.plan, "key-version", _plan_lines(kv, policy, create_new_version))
    if kv.plan.blocking or dry_run:
        return stop_before_writes(change, kv.plan, plan_md, dry_run)
    # approve
    outcome = approve_plan(
        change,
        plan_md,
        heading=f"Approve a new key version for {len(kv.plan.rows)} environment(s)",
        gate=f"{FLOW}-key-version",
        approval_settings=approval_settings,
    )
    if not outcome.approved:
        return not_approved(change, outcome, "No key version was created.")
    # apply
    new_key = new_key_version(services, kv)
    # verify
    rows, problems = verify(services, policy, kv, new_key)
    # report
    until = record_key_version_retirement(change, kv)
    csv_path = publish_environment_table(change, rows)
    summary = summary_markdown(
        f"Rotation {change_id}: new key version",
        [
            f"Key `{key_label(vault.id, key_name)}`: version `{kv.previous}` -> `{new_key.version}`",
            f"Previous version kept enabled; it may be retired after **{until.isoformat(timespec='seconds')}** "
            f"(recorded in `{RETIREMENTS_FILE}`)",
            f"Started {started.isoformat(timespec='seconds')}; CSV `{csv_path}`",
            *[f"**Problem**: {n}" for n in problems],
        ],
        rows,
        outcome.approvals,
        outcome.refusals,
        change_id,
        FLOW,
    )
    publish_change_reports(change, summary)
    get_run_logger().info("Key-version rotation %s: %s", change_id, counts_line(rows))
    report = {
        "change_id": change_id,
        "mode": "key-version",
        "previous_version": kv.previous,
        "new_version": new_key.version,
        "retire_after": until.isoformat(),
        "rows": to_dicts(rows),
        "csv": str(csv_path),
    }
    failed = [r for r in rows if r.status == "failed"]
    if failed or problems:
        return Failed(message=f"{len(failed)} environment(s) unhealthy; {'; '.join(problems)}", data=report)
    return report


def _plan_lines(kv: KeyVersionPlan, policy: PolicyInfo, create_new_version: bool) -> list[str]:
    """The plan's headline for the approver."""
    return [
        f"Policy `{policy.name}` follows key `{key_label(kv.vault_id, kv.key_name)}` "
        f"(version being replaced `{kv.previous}`)",
        "A new key version is "
        + ("created" if create_new_version else "expected from the key's rotation policy")
        + "; there is no downtime, environments re-wrap within 24 hours",
        f"The previous version stays enabled for at least {grace.KEY_VERSION_GRACE_DAYS} days, then the "
        "`retire` flow may disable it",
    ]


def new_key_version(services: Services, kv: KeyVersionPlan) -> KeyInfo:
    """The new version: recorded by an earlier run, the newest one (adopted), or created now."""
    ckpt = services.checkpoints
    recorded = ckpt.step("new_version")
    if recorded:
        return read_key(services, kv.vault_uri, kv.key_name, recorded["version"])
    latest = read_key(services, kv.vault_uri, kv.key_name)
    # A version newer than `previous` means a rotation policy, or an earlier run killed before its
    # checkpoint, already made one: adopt it instead of making a second.
    if latest is not None and latest.version != kv.previous:
        new = latest
    else:
        kv.plan.require(CREATE_KEY_VERSION, key_target(kv.vault_uri, kv.key_name))
        ckpt.finish_step("new_version_started", {"previous": kv.previous})
        new = create_key_version(services, kv.vault_uri, kv.key_name, kv.lifetime)
    ckpt.finish_step("new_version", {"previous": kv.previous, "version": new.version})
    target = key_target(kv.vault_uri, kv.key_name)
    if kv.lifetime and kv.plan.permits(SET_ROTATION_POLICY, target) and not ckpt.step("rotation_policy"):
        set_rotation_policy(services, kv.vault_uri, kv.key_name, kv.lifetime)
        ckpt.finish_step("rotation_policy", {"policy": kv.lifetime.detail()})
    return new


def verify(
    services: Services, policy: PolicyInfo, kv: KeyVersionPlan, new_key: KeyInfo
) -> tuple[list[EnvironmentRow], list[str]]:
    """Every environment re-read, the identity's access to the new version, the previous version still enabled."""
    checks = verify_linked_environments(services, policy, [r.environment_id for r in kv.plan.rows])
    policy_now = read_policy(services, policy.id)
    access = verify_policy_key_access(services, kv.vault_id, policy_now, new_key) if policy_now else []
    previous_key = read_key(services, kv.vault_uri, kv.key_name, kv.previous)
    new_label = key_label(kv.vault_id, kv.key_name, new_key.version)
    rows = []
    for planned, (_, env, env_problems) in zip(kv.plan.rows, checks, strict=True):
        policy_after = (env.cmk.policy_arm_id or "") if env is not None and env.cmk else ""
        on_policy = policy_after.lower() == policy.id.lower()
        row = replace(
            planned,
            policy_after=policy_after,
            key_after=new_label if on_policy else "",
            status="failed" if env_problems else "succeeded",
            error="; ".join(env_problems) if env_problems else planned.error,
        )
        if env is not None:
            row = replace(row, key_managed_by_after=env.key_managed_by or "", read_back=True)
        rows.append(row)
    problems = []
    if previous_key is None or not previous_key.enabled:
        problems.append(
            f"the previous version {kv.previous} is not enabled: environments may not be able to re-wrap"
        )
    blocking_access = [f for f in access if f.severity == "blocking"]
    if blocking_access:
        problems.append(
            "the policy identity cannot use the new version: " + "; ".join(f.code for f in blocking_access)
        )
    if policy_now is None:
        problems.append(f"the policy {policy.name} can no longer be read")
    elif (policy_now.health or "").lower() == "unhealthy":
        problems.append("the policy reports healthStatus Unhealthy")
    return rows, problems
