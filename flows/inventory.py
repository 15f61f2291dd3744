"""Inventory (read-only): every environment with its policy, key and health, and the tenant's risk findings."""

from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.states import Failed

from blocks import DEFAULT_AZURE_BLOCK, DEFAULT_POWERPLATFORM_BLOCK
from cmk.inventory.remediation import remediations
from cmk.inventory.report import assess
from cmk.inventory.risks import SEVERITY_ORDER
from cmk.inventory.snapshot import TenantSnapshot
from tasks.context import connect
from tasks.environments import read_environments
from tasks.events import announce_findings
from tasks.policies import read_policies
from tasks.records import read_journal_grants, read_policy_retirements, read_retirements
from tasks.reports import publish_inventory
from tasks.tenant import read_azure_side

FLOW = "inventory"
FailOn = Literal["never", "high", "medium", "low"]


@flow(name=FLOW, log_prints=True)
def inventory(
    expiry_margin_days: int = 30,
    fail_on: FailOn = "never",
    azure_connection: str = DEFAULT_AZURE_BLOCK,
    powerplatform_connection: str = DEFAULT_POWERPLATFORM_BLOCK,
) -> dict[str, Any]:
    """Read every environment, policy, vault and key, and report the risks; changes nothing.

    Args:
        expiry_margin_days: Flag keys that expire within this many days.
        fail_on: End the run Failed when a risk of this severity or worse is found (never = always Completed).
        azure_connection: Name of the Azure administrator connection block (needs read access only).
        powerplatform_connection: Name of the Power Platform administrator connection block.
    """
    logger = get_run_logger()
    if not 0 <= expiry_margin_days <= 3650:
        raise ValueError(f"expiry_margin_days must be between 0 and 3650; got {expiry_margin_days}.")
    taken_at = datetime.now(UTC)
    services = connect(
        azure_connection,
        powerplatform_connection,
        change_id=f"inventory-{taken_at:%Y%m%dT%H%M%S}",
        flow=FLOW,
    )
    environments = read_environments(services)
    policies = read_policies(services)
    grants = read_journal_grants(services)
    retirements = read_retirements()
    azure = read_azure_side(services, policies, grants, retirements)
    snapshot = TenantSnapshot(
        environments=environments,
        policies=policies,
        vaults=azure.vaults,
        keys=azure.keys,
        role_assignments=azure.role_assignments,
        expected_grants=grants,
        retirements=retirements,
        policy_retirements=read_policy_retirements(),
        read_errors=azure.errors,
    )
    report = assess(snapshot, taken_at, expiry_margin_days)
    # Repairable findings become events (self-healing, opted in per finding; each repair asks approval).
    healing = announce_findings(report, remediations(snapshot, taken_at, expiry_margin_days))
    paths = publish_inventory(report, healing)
    counts = report.counts()
    logger.info(
        "Inventory: %d environment(s), %d polic(ies); risks: %d high, %d medium, %d low.",
        len(report.rows),
        len(policies),
        counts["high"],
        counts["medium"],
        counts["low"],
    )
    result = {
        "taken_at": taken_at.isoformat(timespec="seconds"),
        "environments": len(report.rows),
        "policies": len(policies),
        "risks": [r.to_row() for r in report.risks],
        "risk_codes": sorted({r.code for r in report.risks}),
        "csv": [str(p) for p in paths],
        "self_healing": healing,
    }
    worst = report.worst()
    if fail_on != "never" and worst is not None and SEVERITY_ORDER[worst] <= SEVERITY_ORDER[fail_on]:
        return Failed(
            message=f"Inventory found {counts['high']} high, {counts['medium']} medium and {counts['low']} "
            f"low risk(s) (fail_on={fail_on}); see the inventory-summary artifact.",
            data=result,
        )
    return result
