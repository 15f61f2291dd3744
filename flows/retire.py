"""Retire what a rotation replaced, once its grace period has passed and nothing depends on it any more.

Reads the two registers the rotate flow writes under CMK_STATE_DIR: key versions (key-retirements.json, retired
by disabling the version) and old policies (policy-retirements.json, retired by deleting the policy and removing
its key access and the transition grant of the new policy on the old vault). Each item is checked when planned
and again right before it is changed: refused while its grace period runs (measured with cmk.domain.grace.utc_now) or
while any environment or policy still depends on it (safety invariant 2).
"""

from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Failed

from blocks import DEFAULT_APPROVAL_BLOCK, DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.domain import grace
from cmk.domain.tables import markdown_table
from cmk.plans.change import ChangePlan, PlannedWrite
from cmk.plans.lockdown import access_policy_target
from cmk.plans.retirement import (
    DELETE_POLICY,
    DELETE_ROLE_ASSIGNMENT,
    DISABLE_VERSION,
    REMOVE_ACCESS_POLICY,
    RetirementFacts,
    assess,
    item_writes,
    plan_retirement,
)
from cmk.preflight.parameters import Parameters
from cmk.state.key_retirements import Retirement
from cmk.state.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from flows.parts.approval import approve_once
from flows.parts.endings import end_unapproved
from flows.parts.summaries import approvals_section, findings_section
from tasks.access import delete_role_assignment, remove_access_policy
from tasks.context import Change, Services, open_change, state_dir
from tasks.keys import disable_key_version
from tasks.policies import delete_enterprise_policy
from tasks.records import read_retirement_registers
from tasks.reports import publish_journal, publish_summary
from tasks.tenant import read_retirement_facts

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
    change_id, requested_by, rotation_change_id = check_parameters(
        change_id, requested_by, rotation_change_id
    )
    change = open_change(
        azure_connection, powerplatform_connection, flow=FLOW, change_id=change_id, requested_by=requested_by
    )
    services = change.services

    # Read
    keys, policies = read_retirement_registers(rotation_change_id)
    if not keys and not policies:
        raise ValueError(
            "Nothing is recorded for retirement"
            + (f" by rotation {rotation_change_id}" if rotation_change_id else "")
            + f" under {state_dir()}: run a rotation first, or check CMK_STATE_DIR."
        )
    now = grace.utc_now()
    facts = read_retirement_facts(services, keys, policies)

    # Plan
    items = assess(facts, keys, policies, now)
    plan = plan_retirement(change_id, requested_by, items, facts)
    ready = [i for i in items if i["status"] == "ready"]
    refused = [i for i in items if i["status"] == "refused"]
    header = f"Checked at {now.isoformat(timespec='seconds')}: {len(ready)} ready, {len(refused)} refused."
    plan_md = plan_markdown(plan, header)
    if dry_run or not ready:
        verdict = "Dry run: nothing was changed." if dry_run else "**Refused**: nothing may be retired yet."
        publish_summary(change, f"# Retirement {change_id}: plan\n\n{verdict}\n\n{plan_md}")
        if refused and not ready and not dry_run:
            return Failed(message="Refused: " + " | ".join(f"{i['item']}: {i['reasons']}" for i in refused))
        return {
            "change_id": change_id,
            "dry_run": dry_run,
            "items": items,
            "writes": [w.line() for w in plan.pending],
        }

    # Approve
    outcome = approve_once(
        change,
        approval_settings=approval_settings,
        description=f"## Approve retiring {len(ready)} item(s)\n\n{plan_md}",
        gate=f"{FLOW}-old-keys",
    )
    if not outcome.approved:
        return end_unapproved(change, f"Retirement {change_id}", outcome, "Nothing was retired.")

    # Apply: re-assess right before changing anything (an environment may have moved back meanwhile).
    fresh_facts = read_retirement_facts(services, keys, policies)
    fresh = {i["item"]: i for i in assess(fresh_facts, keys, policies, grace.utc_now())}
    for item in ready:
        again = fresh[item["item"]]
        if again["status"] != "ready":
            item.update(status=again["status"], reasons=again["reasons"])
            continue
        retire_item(change, plan, item, facts)
        item["status"] = "retired"

    # Report
    publish_summary(
        change,
        f"# Retirement {change_id}\n\n{header}\n\n{items_table(items)}\n\n## Approvals\n"
        f"{approvals_section(outcome.approvals, outcome.refusals)}\n\n## Plan\n{plan.writes_markdown()}\n",
    )
    publish_journal(change)
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


def check_parameters(change_id: str, requested_by: str, rotation_change_id: str) -> tuple[str, str, str]:
    """Refuse bad parameters before any request; the cleaned values."""
    p = Parameters()
    change_id = p.change_id(change_id)
    requested_by = p.requester(requested_by)
    rotation = (rotation_change_id or "").strip()
    if rotation:
        p.change_id(rotation, "rotation_change_id")
    p.done()
    return change_id, requested_by, rotation


ITEM_HEADINGS = {
    "item": "Item",
    "kind": "Kind",
    "retire_after": "Retire after",
    "status": "Status",
    "reasons": "Why",
}


def items_table(items: list[dict[str, Any]]) -> str:
    """The items as a markdown table."""
    records = [{**i, "reasons": i["reasons"] or "—"} for i in items]
    return markdown_table(records, ITEM_HEADINGS)


def plan_markdown(plan: ChangePlan, header: str) -> str:
    """What this retirement checked and will write, for the approver and the dry-run report."""
    return (
        f"**Change** `{plan.change_id}` requested by **{plan.requested_by}**\n\n{header}\n\n"
        f"{items_table(plan.rows)}\n\n### Writes\n{plan.writes_markdown()}\n\n"
        f"### Preflight\n{findings_section(plan.findings)}\n"
    )


def retire_item(change: Change, plan: ChangePlan, item: dict[str, Any], facts: RetirementFacts) -> None:
    """Make the planned writes of one item (each checked against the plan), then record a retired policy."""
    source = item["source"]
    for write in item_writes(item, facts):
        if not write.in_place:
            plan.require(write.action, write.target)
            apply_write(change.services, write, source)
    if isinstance(source, PolicyRetirement):
        PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).mark_retired(
            source.policy_id, by=change.requested_by, change_id=change.change_id, at=grace.utc_now()
        )
    get_run_logger().info("Retired %s.", item["item"])


def apply_write(services: Services, write: PlannedWrite, source: Retirement | PolicyRetirement) -> None:
    """One planned write, by its action."""
    if write.action == DISABLE_VERSION and isinstance(source, Retirement):
        disable_key_version(services, source.vault_uri, source.key_name, source.version)
    elif write.action == DELETE_POLICY:
        delete_enterprise_policy(services, write.target)
    elif write.action == REMOVE_ACCESS_POLICY and isinstance(source, PolicyRetirement):
        principal = write.target.rsplit("/accessPolicies/", 1)[1]
        assert write.target == access_policy_target(source.vault_id, principal)
        remove_access_policy(services, source.vault_id, principal)
    elif write.action == DELETE_ROLE_ASSIGNMENT:
        delete_role_assignment(services, write.target)
    else:
        raise ValueError(f"retire cannot make a {write.action!r} write on {write.target}")
