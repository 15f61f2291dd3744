"""Key rotation: a new key version (no downtime), or a new key and policy swapped in, environment by environment.

Both modes record when what they replaced may be retired: in the change's checkpoint (step "retirement") and
in a register the `retire` flow reads (key versions: cmk/retirements.py, policies: cmk/policy_retirements.py,
both under CMK_STATE_DIR). Nothing is disabled, deleted or unshared here (safety invariant 2).
"""

import re
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk import grace
from cmk.checkpoints import validate_change_id
from cmk.models import EnvironmentInfo, KeyInfo, PolicyInfo, VaultInfo
from cmk.moves import SWAP_METHODS, SwapMethod
from cmk.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from cmk.preflight import (
    Finding,
    check_environment,
    check_identity_permissions,
    check_key,
    check_vault,
    find_requested,
    same_geo,
    sort_findings,
)
from cmk.resource_ids import parse_policy_id, parse_vault_id, same_id
from cmk.retirement_checks import dependent_environments
from cmk.retirements import RETIREMENTS_FILE, Retirement, RetirementRegister
from flows.approval import ApprovalOutcome
from flows.endings import end_unapproved, finish, publish_change_reports, stop_before_change
from flows.gates import approve_once
from flows.rotation_fanout import (
    PER_ENVIRONMENT_MAX_CONCURRENCY,
    PER_WAVE_MAX_CONCURRENCY,
    FanOut,
    choose_fanout,
    move_environments,
)
from flows.rotation_text import key_label, plan_markdown, summary_markdown
from flows.summaries import counts_line
from tasks.context import Services, connect, state_dir
from tasks.environments import read_environments
from tasks.onboarding import (
    deploy_policy,
    grant_key_access,
    grant_policy_reader,
    read_vault,
    wait_policy_identity,
)
from tasks.preflight import verify_policy_key_access
from tasks.reports import Progress, publish_environment_table, publish_summary
from tasks.rotation import (
    create_key_version,
    list_key_versions,
    read_key,
    read_policy,
    verify_linked_environments,
)

FLOW = "rotate"
Mode = Literal["key-version", "policy-swap"]
_NAME_CHARS = re.compile(r"[^A-Za-z0-9-]+")
SCHEDULER = "scheduled-rotation"


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
        change_id: Your change number; re-running with the same id resumes the change safely. Empty = "rotate-<mode>-<date of the scheduled run>".
        requested_by: Who asks for this change; they cannot approve it themselves.
        mode: key-version = new version of the same key, no downtime; policy-swap = new key and new policy, each environment moved (short downtimes).
        new_policy_name: policy-swap: name of the new policy; empty = "<old policy>-<change id>".
        new_key_name: policy-swap: the new key; empty = "<old key>-<change id>" (an existing key of the same type and size is adopted).
        new_vault_id: policy-swap: ARM id of the vault for the new key; empty = the old policy's vault.
        resource_group: policy-swap: resource group of the new policy; empty = the old policy's.
        environments: policy-swap: only these environment ids; empty = every environment of the old policy.
        whole_tenant: policy-swap: every environment on a customer-managed key in the policy's geo, whatever its policy.
        swap_method: policy-swap: link = link the new policy over the old one (one downtime); unlink-then-link = Microsoft's documented way (two downtimes).
        create_new_version: key-version: create the new version; off = a rotation policy already made it, only verify and record.
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
    validate_inputs(
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
    )
    services = connect(azure_connection, powerplatform_connection, change_id=change_id, flow=FLOW)
    old = read_policy(services, policy_id)
    problems = policy_problems(old)
    if problems:
        raise ValueError(f"Policy {old.name} cannot be rotated: {'; '.join(problems)}.")
    if mode == "key-version":
        return rotate_key_version(
            services, old, change_id, requested_by, create_new_version, approval_settings, dry_run
        )
    return swap_policy(
        services,
        old,
        change_id=change_id,
        requested_by=requested_by,
        new_policy_name=new_policy_name or default_name(old.name, change_id),
        new_key_name=new_key_name or default_name(old.key_name or "pp-cmk-key", change_id),
        new_vault_id=new_vault_id or old.vault_id or "",
        resource_group=resource_group or old.resource_group,
        environments=environments or [],
        whole_tenant=whole_tenant,
        swap_method=swap_method,
        admin_object_id=powerplatform_admin_object_id or services.admin_object_id,
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        fanout=fanout,
        dry_run=dry_run,
        timeout_seconds=operation_timeout_seconds,
        approval_settings=approval_settings,
    )


# -- inputs ---------------------------------------------------------------------------------------------
def validate_inputs(
    change_id: str,
    requested_by: str,
    policy_id: str,
    mode: str,
    new_vault_id: str | None,
    swap_method: str,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    environments: list[str] | None,
    whole_tenant: bool,
    fanout: str = "auto",
) -> None:
    """Refuse bad parameters before anything is read or changed."""
    validate_change_id(change_id)
    if not requested_by.strip():
        raise ValueError("requested_by is empty: say who asks for this change (they cannot approve it).")
    parse_policy_id(policy_id)
    if mode not in ("key-version", "policy-swap"):
        raise ValueError(f"mode must be key-version or policy-swap, not {mode!r}.")
    if new_vault_id:
        parse_vault_id(new_vault_id)
    if swap_method not in SWAP_METHODS:
        raise ValueError(f"swap_method must be one of {', '.join(SWAP_METHODS)}, not {swap_method!r}.")
    if not 1 <= concurrency <= PER_WAVE_MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {PER_WAVE_MAX_CONCURRENCY}; got {concurrency}.")
    if fanout == "per-environment" and concurrency > PER_ENVIRONMENT_MAX_CONCURRENCY:
        raise ValueError(
            f"fanout per-environment runs at most {PER_ENVIRONMENT_MAX_CONCURRENCY} environments at once; "
            f"got concurrency {concurrency}. Lower it, or use fanout per-wave (or auto) for more."
        )
    if canary_size < 0 or failure_threshold < 0:
        raise ValueError("canary_size and failure_threshold must be 0 or more.")
    if environments and whole_tenant:
        raise ValueError("Give either environments or whole_tenant, not both.")
    if mode == "key-version" and (environments or whole_tenant):
        raise ValueError(
            "key-version rotation applies to every environment of the policy (they follow its key); "
            "leave environments and whole_tenant empty, or use mode policy-swap to move a chosen set."
        )


def policy_problems(policy: PolicyInfo) -> list[str]:
    """Why a policy cannot be the starting point of a rotation."""
    out = []
    if policy.kind.lower() != "encryption":
        out.append(f"it is a {policy.kind} policy, not Encryption")
    if not policy.vault_id or not policy.key_name:
        out.append("it names no Key Vault key")
    if not policy.system_id:
        out.append("it has no systemId yet")
    return out


def default_name(base: str, change_id: str) -> str:
    """'<base>-<change id>' with only letters, digits and dashes (valid for keys and policies)."""
    return _NAME_CHARS.sub("-", f"{base}-{change_id}").strip("-")[:120]


# -- approval -------------------------------------------------------------------------------------------
def not_approved(services: Services, change_id: str, outcome: ApprovalOutcome, what: str) -> Any:
    """Publish why nothing changed and end the run Cancelled (rejected) or Failed (expired)."""
    summary = summary_markdown(
        f"Rotation {change_id}: {outcome.status}",
        [f"{what} Reason: {outcome.reason}"],
        [],
        outcome.approvals,
        outcome.refusals,
        change_id,
        FLOW,
    )
    return end_unapproved(services, FLOW, change_id, f"Rotation {change_id}", outcome, what, summary)


# -- key-version mode -----------------------------------------------------------------------------------
def rotate_key_version(
    services: Services,
    policy: PolicyInfo,
    change_id: str,
    requested_by: str,
    create_new_version: bool,
    approval_settings: str,
    dry_run: bool,
) -> Any:
    """New key version, environments verified healthy, previous version kept and its retire date recorded."""
    logger = get_run_logger()
    started = grace.utc_now()
    vault = read_vault(services, policy.vault_id or "")
    key_name = policy.key_name or ""
    current = read_key(services, vault.uri, key_name)
    envs = read_environments(services)
    linked = dependent_environments(envs, policy.system_id or "")
    findings = list(check_vault(vault, vault.id))
    assignments = services.arm.list_role_assignments(vault.id, policy.principal_id) if vault.rbac else []
    findings += check_identity_permissions(vault, policy, assignments)
    findings += check_key(current, key_ref=f"{vault.uri}/keys/{key_name}")
    if policy.key_version:
        findings.append(
            Finding(
                "POLICY_PINS_KEY_VERSION",
                "blocking",
                policy.id,
                f"Policy {policy.name} pins key version {policy.key_version}: a new version would not be used, "
                "and a linked policy cannot be updated.",
                "Use mode policy-swap to move the environments to a new policy with a version-less key.",
            )
        )
    recorded = services.checkpoints.step("new_version") or services.checkpoints.step("new_version_started")
    if recorded:
        previous = recorded["previous"]
    elif create_new_version or current is None:
        previous = current.version if current else ""
    else:
        # A rotation policy already made the newest version: the one before it is what gets retired later.
        versions = list_key_versions(services, vault.uri, key_name)
        if len(versions) < 2:
            findings.append(
                Finding(
                    "KEY_NOT_ROTATED_YET",
                    "blocking",
                    f"{vault.uri}/keys/{key_name}",
                    f"Key {key_name} has a single version: its rotation policy has not rotated it yet.",
                    "Run with create_new_version on, or wait until the rotation policy makes a new version.",
                )
            )
        previous = versions[-2].version if len(versions) >= 2 else (current.version if current else "")
    rows = [
        {
            "environment_id": e.id,
            "name": e.display_name,
            "geo": e.location,
            "sku": e.sku,
            "key_managed_by_before": e.key_managed_by,
            "policy_before": policy.id,
            "key_before": key_label(vault.id, key_name, previous),
        }
        for e in linked
    ]
    findings = sort_findings(findings)
    blocking = [f for f in findings if f.severity == "blocking"]
    lines = [
        f"Policy `{policy.name}` follows key `{key_label(vault.id, key_name)}` (current version `{previous}`)",
        "A new key version is "
        + ("created" if create_new_version else "expected from the key's rotation policy")
        + "; there is no downtime, environments re-wrap within 24 hours",
        f"The previous version stays enabled for at least {grace.KEY_VERSION_GRACE_DAYS} days, then the "
        "`retire` flow may disable it",
    ]
    plan_md = plan_markdown(change_id, requested_by, "key-version", lines, rows, findings)
    if blocking or dry_run:
        return stop_before_change(
            FLOW, change_id, f"Rotation {change_id}", plan_md, rows, blocking, dry_run=dry_run
        )

    outcome = approve_once(
        services,
        change_id=change_id,
        requested_by=requested_by,
        approval_settings=approval_settings,
        gate=f"{FLOW}-key-version",
        description=f"## Approve a new key version for {len(rows)} environment(s)\n\n{plan_md}",
    )
    if not outcome.approved:
        return not_approved(services, change_id, outcome, "No key version was created.")

    new_key = new_key_version(services, vault, key_name, previous, create_new_version)
    checks = verify_linked_environments(services, policy, [r["environment_id"] for r in rows])
    policy_now = services.arm.get_policy(policy.id)
    access = verify_policy_key_access(services, vault.id, policy_now, new_key)
    previous_key = read_key(services, vault.uri, key_name, previous)
    for row, (_, env, env_problems) in zip(rows, checks, strict=True):
        row.update(policy_after=policy.id, key_after=key_label(vault.id, key_name, new_key.version))
        if env is not None:
            row["key_managed_by_after"] = env.key_managed_by
        row["status"] = "failed" if env_problems else "succeeded"
        if env_problems:
            row["error"] = "; ".join(env_problems)
    notes = []
    if previous_key is None or not previous_key.enabled:
        notes.append(
            f"the previous version {previous} is not enabled: environments may not be able to re-wrap"
        )
    blocking_access = [f for f in access if f.severity == "blocking"]
    if blocking_access:
        notes.append(
            "the policy identity cannot use the new version: " + "; ".join(f.code for f in blocking_access)
        )
    if (policy_now.health or "").lower() == "unhealthy":
        notes.append("the policy reports healthStatus Unhealthy")

    until = grace.retire_after(grace.utc_now(), grace.KEY_VERSION_GRACE_DAYS)
    recorded_at = grace.utc_now()
    RetirementRegister(state_dir() / RETIREMENTS_FILE).record(
        Retirement(vault.uri, key_name, previous, until, change_id, recorded_at)
    )
    services.checkpoints.finish_step(
        "retirement",
        {
            "kind": "key-version",
            "vault_uri": vault.uri,
            "key_name": key_name,
            "version": previous,
            "retire_after": until.isoformat(),
            "register": str(state_dir() / RETIREMENTS_FILE),
        },
    )
    csv_path = publish_environment_table(FLOW, change_id, rows)
    summary = summary_markdown(
        f"Rotation {change_id}: new key version",
        [
            f"Key `{key_label(vault.id, key_name)}`: version `{previous}` -> `{new_key.version}`",
            f"Previous version kept enabled; it may be retired after **{until.isoformat(timespec='seconds')}** "
            f"(recorded in `{RETIREMENTS_FILE}`)",
            f"Started {started.isoformat(timespec='seconds')}; CSV `{csv_path}`",
            *[f"**Problem**: {n}" for n in notes],
        ],
        rows,
        outcome.approvals,
        outcome.refusals,
        change_id,
        FLOW,
    )
    publish_change_reports(services, FLOW, change_id, summary)
    failed = [r for r in rows if r["status"] == "failed"]
    logger.info("Key-version rotation %s: %s", change_id, counts_line(rows))
    report = {
        "change_id": change_id,
        "mode": "key-version",
        "previous_version": previous,
        "new_version": new_key.version,
        "retire_after": until.isoformat(),
        "rows": rows,
        "csv": str(csv_path),
    }
    if failed or notes:
        return Failed(message=f"{len(failed)} environment(s) unhealthy; {'; '.join(notes)}", data=report)
    return report


def new_key_version(
    services: Services, vault: VaultInfo, key_name: str, previous: str, create_new_version: bool
) -> KeyInfo:
    """The new version: recorded by an earlier run, created now, or (rotation policy) the newest one."""
    ckpt = services.checkpoints
    recorded = ckpt.step("new_version")
    if recorded:
        return read_key(services, vault.uri, key_name, recorded["version"])
    latest = read_key(services, vault.uri, key_name)
    # A version newer than `previous` means a rotation policy, or an earlier run killed before its
    # checkpoint, already made one: adopt it instead of making a second.
    if latest is not None and latest.version != previous:
        new = latest
    elif create_new_version:
        ckpt.finish_step("new_version_started", {"previous": previous})
        new = create_key_version(services, vault.uri, key_name)
    else:
        versions = list_key_versions(services, vault.uri, key_name)
        raise ValueError(
            f"Key {key_name} has no version newer than {previous} ({len(versions)} version(s)); the rotation "
            "policy has not rotated it yet. Run with create_new_version on, or wait for the rotation."
        )
    ckpt.finish_step("new_version", {"previous": previous, "version": new.version})
    return new


# -- policy-swap mode -----------------------------------------------------------------------------------
def choose_targets(
    envs: list[EnvironmentInfo],
    old: PolicyInfo,
    new_system_id: str | None,
    requested: list[str],
    whole_tenant: bool,
) -> tuple[list[EnvironmentInfo], list[Finding]]:
    """The environments to move: the chosen ids, the whole tenant's CMK environments in the geo, or the old policy's."""
    if requested:
        return find_requested(envs, requested)
    if whole_tenant:
        return [
            e
            for e in envs
            if e.cmk is not None
            and same_geo(e.location, old.location)
            and (e.cmk.system_id or "").lower() != (new_system_id or "").lower()
        ], []
    return dependent_environments(envs, old.system_id or ""), []


def environment_findings(env: EnvironmentInfo, stand_in: PolicyInfo) -> list[Finding]:
    """Environment checks for a swap: a running operation is waited for, not blocking; the swap itself is expected."""
    out = []
    for f in check_environment(env, stand_in):
        if f.code == "ENV_LINKED_TO_OTHER_POLICY":
            continue
        busy = f.code == "ENV_OPERATION_RUNNING" or (
            f.code == "ENV_DISABLED" and (env.runtime_reason or "") == "LifecycleOperationInProgress"
        )
        if busy:
            f = Finding(f.code, "warning", f.target, f.message, "The rotation waits for it to finish.")
        out.append(f)
    return out


def swap_policy(
    services: Services,
    old: PolicyInfo,
    *,
    change_id: str,
    requested_by: str,
    new_policy_name: str,
    new_key_name: str,
    new_vault_id: str,
    resource_group: str,
    environments: list[str],
    whole_tenant: bool,
    swap_method: SwapMethod,
    admin_object_id: str | None,
    concurrency: int,
    canary_size: int,
    failure_threshold: int,
    fanout: FanOut,
    dry_run: bool,
    timeout_seconds: float,
    approval_settings: str,
) -> Any:
    """New key + new policy + grants, approval, then every environment moved in waves, verified, reported."""
    logger = get_run_logger()
    started = grace.utc_now()
    old_vault = read_vault(services, old.vault_id or "")
    new_vault = old_vault if same_id(new_vault_id, old_vault.id) else read_vault(services, new_vault_id)
    old_key = read_key(services, old_vault.uri, old.key_name or "")
    existing_new_key = read_key(services, new_vault.uri, new_key_name)
    envs = read_environments(services)
    ckpt = services.checkpoints
    recorded = ckpt.step("plan")
    if recorded:
        targets_ids = recorded["environments"]
        by_id = {e.id.lower(): e for e in envs}
        targets = [by_id[i.lower()] for i in targets_ids if i.lower() in by_id]
        findings: list[Finding] = []
    else:
        targets, findings = choose_targets(envs, old, None, environments, whole_tenant)
    stand_in = PolicyInfo(
        id="",
        name=new_policy_name,
        resource_group=resource_group,
        location=old.location,
        kind="Encryption",
        system_id=None,
        principal_id=None,
        tenant_id=None,
        vault_id=new_vault.id,
        key_name=new_key_name,
        key_version=None,
    )
    findings += check_vault(new_vault, new_vault.id)
    old_assignments = (
        services.arm.list_role_assignments(old_vault.id, old.principal_id) if old_vault.rbac else []
    )
    findings += check_identity_permissions(
        old_vault, old, old_assignments
    )  # a swap re-wraps with the old key
    findings += check_key(old_key, key_ref=f"{old_vault.uri}/keys/{old.key_name}")
    if existing_new_key is not None:
        findings += check_key(existing_new_key)
        if old_key is not None and (existing_new_key.kty, existing_new_key.size) != (
            old_key.kty,
            old_key.size,
        ):
            findings.append(
                Finding(
                    "KEY_PARAMETERS_DIFFER",
                    "blocking",
                    existing_new_key.kid,
                    f"Key {new_key_name} exists as {existing_new_key.kty} {existing_new_key.size}, the old key is "
                    f"{old_key.kty} {old_key.size}.",
                    "Choose another new_key_name.",
                )
            )
    if same_id(
        f"{old.id}",
        f"/subscriptions/{old.id.split('/')[2]}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.PowerPlatform/enterprisePolicies/{new_policy_name}",
    ):
        findings.append(
            Finding(
                "NEW_POLICY_IS_OLD",
                "blocking",
                old.id,
                "The new policy name is the old policy's.",
                "Choose another new_policy_name.",
            )
        )
    if not recorded:
        for env in targets:
            findings += environment_findings(env, stand_in)
    if not targets:
        findings.append(
            Finding(
                "NO_ENVIRONMENTS",
                "blocking",
                old.id,
                "No environment to move.",
                "Check policy_id, or pass environment ids.",
            )
        )
    findings = sort_findings(findings)
    blocking = [f for f in findings if f.severity == "blocking"]
    old_label = key_label(old_vault.id, old.key_name)
    new_label = key_label(new_vault.id, new_key_name)
    rows = [
        {
            "environment_id": e.id,
            "name": e.display_name,
            "geo": e.location,
            "sku": e.sku,
            "key_managed_by_before": e.key_managed_by,
            "policy_before": e.cmk.policy_arm_id if e.cmk else "",
            "key_before": old_label
            if e.cmk and (e.cmk.system_id or "").lower() == (old.system_id or "").lower()
            else "",
        }
        for e in targets
    ]
    chosen_fanout = choose_fanout(fanout, len(rows))
    lines = [
        f"Old policy `{old.name}` with key `{old_label}`",
        f"New key `{new_label}` ({old_key.kty if old_key else 'RSA'} {old_key.size if old_key else 2048}) and new "
        f"policy `{new_policy_name}` in resource group `{resource_group}`, geo `{old.location}`",
        "The new policy's identity gets key access to the new key and to the old vault (as Microsoft advises)",
        f"Environments move by **{swap_method}** "
        + ("(one short downtime each)" if swap_method == "link" else "(two short downtimes each)")
        + f": canary {canary_size} first, then {concurrency} at a time ({chosen_fanout}); stop after "
        f"{failure_threshold or 'no'} failure(s)",
        f"The old key, its access and the old policy are kept at least {grace.POLICY_GRACE_DAYS} days; the "
        "`retire` flow removes them later",
    ]
    plan_md = plan_markdown(change_id, requested_by, "policy-swap", lines, rows, findings)
    if blocking or dry_run:
        return stop_before_change(
            FLOW, change_id, f"Rotation {change_id}", plan_md, rows, blocking, dry_run=dry_run
        )

    if not recorded:
        ckpt.finish_step("plan", {"environments": [r["environment_id"] for r in rows]})
    new_key, _ = services.keyvault.ensure_key(
        new_vault.uri,
        new_key_name,
        old_key.kty if old_key else "RSA",
        (old_key.size if old_key else None) or 2048,
    )
    new_policy = deploy_policy(
        services, resource_group, new_policy_name, old.location, new_vault.id, new_key_name
    )
    new_policy = wait_policy_identity(services, new_policy.id)
    grant_key_access(services, new_vault, new_policy)
    if not same_id(new_vault.id, old_vault.id):
        grant_key_access(services, old_vault, new_policy)
    if admin_object_id:
        grant_policy_reader(services, new_policy, admin_object_id)
    access = verify_policy_key_access(services, new_vault.id, new_policy, new_key)
    if any(f.severity == "blocking" for f in access):
        publish_summary(
            FLOW,
            change_id,
            "# Rotation stopped\n\nThe new policy's identity cannot use the new "
            "key:\n\n" + "\n".join(f"- {f.code}: {f.message}" for f in access),
        )
        return Failed(message="The new policy's identity cannot use the new key; see the summary artifact.")

    outcome = approve_once(
        services,
        change_id=change_id,
        requested_by=requested_by,
        approval_settings=approval_settings,
        gate=f"{FLOW}-swap",
        description=f"## Approve moving {len(rows)} environment(s) to a new key and policy\n\n{plan_md}\n"
        f"New policy systemId: `{new_policy.system_id}`",
    )
    if not outcome.approved:
        return not_approved(services, change_id, outcome, "No environment was moved.")

    progress = Progress(len(rows), f"Moving {len(rows)} environment(s) to {new_policy.name}")
    result = move_environments(
        services,
        [r["environment_id"] for r in rows],
        new_policy,
        method=swap_method,
        fanout=fanout,
        concurrency=concurrency,
        canary_size=canary_size,
        failure_threshold=failure_threshold,
        timeout_seconds=timeout_seconds,
        progress=progress,
    )
    planned = {r["environment_id"].lower(): r for r in rows}
    final = []
    for row in result.rows:
        base = planned.get(row["environment_id"].lower(), {})
        merged = {**base, **{k: v for k, v in row.items() if v not in (None, "")}}
        moved = row.get("status") in ("succeeded", "already-done", "skipped-done")
        merged["key_after"] = new_label if moved else merged.get("key_before", "")
        if not moved:
            merged["policy_after"] = (
                row.get("policy_after") if row.get("status") == "failed" else base.get("policy_before", "")
            )
        final.append(merged)

    until = grace.retire_after(grace.utc_now(), grace.POLICY_GRACE_DAYS)
    entry = PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).record(
        PolicyRetirement(
            change_id=change_id,
            policy_id=old.id,
            system_id=old.system_id or "",
            principal_id=old.principal_id or "",
            vault_id=old_vault.id,
            key_name=old.key_name or "",
            new_policy_id=new_policy.id,
            new_principal_id=new_policy.principal_id or "",
            new_vault_id=new_vault.id,
            retire_after=until,
            recorded_at=grace.utc_now(),
        )
    )
    ckpt.finish_step(
        "retirement",
        {
            "kind": "policy",
            "policy_id": old.id,
            "retire_after": entry.retire_after.isoformat(),
            "register": str(state_dir() / POLICY_RETIREMENTS_FILE),
        },
    )
    csv_path = publish_environment_table(FLOW, change_id, final)
    finished = grace.utc_now()
    summary = summary_markdown(
        f"Rotation {change_id}: policy swap",
        [
            f"`{old.name}` (`{old_label}`) -> `{new_policy.name}` (`{new_label}`, systemId `{new_policy.system_id}`)",
            f"Method {swap_method}, fan-out {result.fanout}; started {started.isoformat(timespec='seconds')}, "
            f"finished {finished.isoformat(timespec='seconds')} ({(finished - started).total_seconds():.0f} s)",
            *([f"Halted: {result.halt_reason}"] if result.halted else []),
            f"The old policy, its key and its access may be retired after "
            f"**{entry.retire_after.isoformat(timespec='seconds')}** (recorded in `{POLICY_RETIREMENTS_FILE}`)",
            f"CSV: `{csv_path}`",
        ],
        final,
        outcome.approvals,
        outcome.refusals,
        change_id,
        FLOW,
    )
    publish_change_reports(services, FLOW, change_id, summary)
    logger.info("Policy swap %s finished: %s", change_id, counts_line(final))
    report = {
        "change_id": change_id,
        "mode": "policy-swap",
        "old_policy_id": old.id,
        "new_policy_id": new_policy.id,
        "new_system_id": new_policy.system_id,
        "new_key": new_label,
        "retire_after": entry.retire_after.isoformat(),
        "rows": final,
        "halted": result.halted,
        "fanout": result.fanout,
        "csv": str(csv_path),
    }
    return finish(final, result.halted, report)
