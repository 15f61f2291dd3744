"""Retire what a rotation replaced, once its grace period has passed and nothing depends on it any more.

Reads the two registers the rotate flow writes under CMK_STATE_DIR: key versions (key-retirements.json, retired
by disabling the version) and old policies (policy-retirements.json, retired by deleting the policy and removing
its key access and the transition grant of the new policy on the old vault). Each item is checked right before
it is changed: refused while its grace period runs (measured with cmk.grace.utc_now) or while any environment
or policy still depends on it (safety invariant 2).
"""

from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Failed

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from blocks.approval import ApprovalSettings
from cmk import grace
from cmk.checkpoints import validate_change_id
from cmk.errors import NotFoundError
from cmk.models import PolicyInfo
from cmk.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from cmk.resource_ids import same_id
from cmk.retirement_checks import key_version_blockers, policy_blockers
from cmk.retirements import RETIREMENTS_FILE, Retirement, RetirementRegister
from flows.approval import request_approval
from flows.endings import end_unapproved
from flows.summaries import approvals_section
from tasks.context import Services, connect, state_dir
from tasks.environments import read_environments
from tasks.onboarding import CRYPTO_SERVICE_ENCRYPTION_USER
from tasks.reports import publish_journal, publish_summary

FLOW = "retire"


@flow(name=FLOW, log_prints=True)
def retire(
    change_id: str,
    requested_by: str,
    rotation_change_id: str = "",
    dry_run: bool = False,
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
    approval_settings: str = DEFAULT_APPROVAL_BLOCK,
) -> Any:
    """Disable old key versions and remove old policies whose grace period has passed and that nothing uses.

    Args:
        change_id: Your change number for this retirement.
        requested_by: Who asks for this change; they cannot approve it themselves.
        rotation_change_id: Retire only what this rotation change replaced; empty = everything recorded.
        dry_run: Only show what may be retired now and what is refused, and why; change nothing.
        azure_connection: Name of the Azure administrator connection block.
        powerplatform_connection: Name of the Power Platform administrator connection block.
        approval_settings: Name of the approval settings block.
    """
    logger = get_run_logger()
    validate_change_id(change_id)
    if rotation_change_id:
        validate_change_id(rotation_change_id)
    if not requested_by.strip():
        raise ValueError("requested_by is empty: say who asks for this change (they cannot approve it).")
    services = connect(azure_connection, powerplatform_connection, change_id=change_id, flow=FLOW)
    now = grace.utc_now()
    keys = [
        r
        for r in RetirementRegister(state_dir() / RETIREMENTS_FILE).entries()
        if not rotation_change_id or r.change_id == rotation_change_id
    ]
    policies = [
        p
        for p in PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).entries()
        if not p.retired and (not rotation_change_id or p.change_id == rotation_change_id)
    ]
    if not keys and not policies:
        raise ValueError(
            "Nothing is recorded for retirement"
            + (f" by rotation {rotation_change_id}" if rotation_change_id else "")
            + f" under {state_dir()}: run a rotation first, or check CMK_STATE_DIR."
        )
    items = assess(services, keys, policies, now)
    ready = [i for i in items if i["status"] == "ready"]
    refused = [i for i in items if i["status"] == "refused"]
    table = items_table(items)
    header = f"Checked at {now.isoformat(timespec='seconds')}: {len(ready)} ready, {len(refused)} refused."
    if dry_run or not ready:
        verdict = "Dry run: nothing was changed." if dry_run else "**Refused**: nothing may be retired yet."
        publish_summary(FLOW, change_id, f"# Retirement {change_id}: plan\n\n{verdict} {header}\n\n{table}")
        if not ready and refused and not dry_run:
            return Failed(message="Refused: " + " | ".join(f"{i['item']}: {i['reasons']}" for i in refused))
        return {"change_id": change_id, "dry_run": dry_run, "items": items}

    outcome = request_approval(
        change_id=change_id,
        requested_by=requested_by,
        settings=ApprovalSettings.load(approval_settings),
        journal=services.journal,
        gate=f"{FLOW}-old-keys",
        description_markdown=f"## Approve retiring {len(ready)} item(s)\n\n{header}\n\n{table}",
    )
    if not outcome.approved:
        return end_unapproved(
            services, FLOW, change_id, f"Retirement {change_id}", outcome, "Nothing was retired."
        )

    # Re-assess right before changing anything: an environment may have moved back meanwhile.
    fresh = {i["item"]: i for i in assess(services, keys, policies, grace.utc_now())}
    for item in ready:
        again = fresh[item["item"]]
        if again["status"] != "ready":
            item.update(status="refused", reasons=again["reasons"])
            continue
        retire_item(services, item, change_id, requested_by)
        item["status"] = "retired"
    table = items_table(items)
    publish_summary(
        FLOW,
        change_id,
        f"# Retirement {change_id}\n\n{header}\n\n{table}\n\n## Approvals\n"
        f"{approvals_section(outcome.approvals, outcome.refusals)}\n",
    )
    publish_journal(FLOW, change_id, services.journal.entries(change_id=change_id))
    logger.info("Retirement %s: %s", change_id, ", ".join(f"{i['item']} {i['status']}" for i in items))
    report = {"change_id": change_id, "dry_run": False, "items": items}
    still_refused = [i for i in items if i["status"] == "refused"]
    if still_refused:
        return Failed(
            message="Some items were refused: "
            + " | ".join(f"{i['item']}: {i['reasons']}" for i in still_refused),
            data=report,
        )
    return report


def assess(
    services: Services, keys: list[Retirement], policies: list[PolicyRetirement], now: Any
) -> list[dict[str, Any]]:
    """Each recorded item with its status (ready, refused, already-retired) and the reasons."""
    items: list[dict[str, Any]] = []
    all_policies = services.arm.list_policies() if keys else []
    vault_uris: dict[str, str] = {}

    def vault_uri(policy: PolicyInfo) -> str:
        vault_id = (policy.vault_id or "").lower()
        if vault_id and vault_id not in vault_uris:
            try:
                vault_uris[vault_id] = services.keyvault.get_vault(vault_id).uri.lower()
            except NotFoundError:
                vault_uris[vault_id] = ""
        return vault_uris.get(vault_id, "")

    for r in keys:
        label = f"key {r.key_name} version {r.version}"
        try:
            version = services.keyvault.get_key(r.vault_uri, r.key_name, r.version)
            latest = services.keyvault.get_key(r.vault_uri, r.key_name).version
        except NotFoundError:
            items.append(
                _item("key-version", label, r.retire_after, "already-retired", ["the key is gone"], r)
            )
            continue
        if not version.enabled:
            items.append(
                _item("key-version", label, r.retire_after, "already-retired", ["already disabled"], r)
            )
            continue
        pinning = [
            p.name
            for p in all_policies
            if (p.key_version or "").lower() == r.version.lower()
            and (p.key_name or "").lower() == r.key_name.lower()
            and vault_uri(p) == r.vault_uri.lower()
        ]
        reasons = key_version_blockers(
            r.version, r.retire_after, now, latest_version=latest, pinning_policies=pinning
        )
        items.append(
            _item("key-version", label, r.retire_after, "refused" if reasons else "ready", reasons, r)
        )
    envs = read_environments(services) if policies else []
    for p in policies:
        label = f"policy {p.policy_id.rsplit('/', 1)[-1]}"
        reasons = policy_blockers(p, now, envs)
        items.append(_item("policy", label, p.retire_after, "refused" if reasons else "ready", reasons, p))
    return items


def _item(kind: str, label: str, until: Any, status: str, reasons: list[str], source: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "item": label,
        "retire_after": until.isoformat(timespec="seconds"),
        "status": status,
        "reasons": "; ".join(reasons),
        "source": source,
    }


def items_table(items: list[dict[str, Any]]) -> str:
    """The items as a markdown table."""
    lines = ["| Item | Kind | Retire after | Status | Why |", "|---|---|---|---|---|"]
    for i in items:
        lines.append(
            f"| {i['item']} | {i['kind']} | {i['retire_after']} | {i['status']} | {i['reasons'] or '—'} |"
        )
    return "\n".join(lines)


def retire_item(services: Services, item: dict[str, Any], change_id: str, requested_by: str) -> None:
    """Disable the key version, or delete the old policy and remove its and the transition key access."""
    logger = get_run_logger()
    source = item["source"]
    if isinstance(source, Retirement):
        services.keyvault.set_key_version_enabled(source.vault_uri, source.key_name, source.version, False)
        logger.info("Disabled %s.", item["item"])
        return
    entry: PolicyRetirement = source
    deleted = services.arm.delete_enterprise_policy(entry.policy_id)
    remove_key_access(services, entry.vault_id, entry.principal_id)
    if not same_id(entry.new_vault_id, entry.vault_id):
        remove_key_access(services, entry.vault_id, entry.new_principal_id)
    PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).mark_retired(
        entry.policy_id, by=requested_by, change_id=change_id, at=grace.utc_now()
    )
    logger.info("Retired %s (%s).", item["item"], "deleted" if deleted else "was already deleted")


def remove_key_access(services: Services, vault_id: str, principal_id: str) -> None:
    """Remove a principal's key access on a vault: its access-policy entry, or its key role at vault scope."""
    if not principal_id:
        return
    vault = services.keyvault.get_vault(vault_id)
    if not vault.rbac:
        services.keyvault.remove_access_policy(vault_id, principal_id)
        return
    from cmk.roles import role_guid

    wanted = role_guid(CRYPTO_SERVICE_ENCRYPTION_USER)
    for assignment in services.arm.list_role_assignments(vault_id, principal_id):
        if assignment.role_guid == wanted and same_id(assignment.scope, vault_id):
            services.arm.delete_role_assignment(assignment.id)
