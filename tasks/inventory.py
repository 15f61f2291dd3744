"""Inventory tasks: read the Azure side in bulk (read-only), and publish the inventory's artifacts and CSV."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from cmk.access_drift import ExpectedGrant, expected_grants
from cmk.errors import CmkError
from cmk.inventory import InventoryReport, KeyState, risks_frame, rows_frame, summary_markdown
from cmk.models import PolicyInfo, RoleAssignmentInfo, VaultInfo
from cmk.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from cmk.reports import write_csv
from cmk.retirements import RETIREMENTS_FILE, Retirement, RetirementRegister
from tasks.context import Services, reports_dir, state_dir
from tasks.retry import TRANSIENT_RETRY

FLOW = "inventory"


@dataclass
class AzureSideState:
    """What was read on the Azure side: vaults, keys and role assignments by lower-case id, and failures."""

    vaults: dict[str, VaultInfo] = field(default_factory=dict)
    keys: dict[tuple[str, str], KeyState] = field(default_factory=dict)
    role_assignments: dict[str, list[RoleAssignmentInfo]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@task(
    name="read-policies",
    **TRANSIENT_RETRY,
)
def read_policies(services: Services) -> list[PolicyInfo]:
    """Every Encryption enterprise policy of the subscription, read with one paged list."""
    return services.arm.list_policies()


@task(name="read-journal-grants", cache_policy=NO_CACHE)
def read_journal_grants(services: Services) -> list[ExpectedGrant]:
    """The grants the journal says are in place (or removed), replayed from every change."""
    return expected_grants(services.journal.entries())


@task(name="read-retirements", cache_policy=NO_CACHE)
def read_retirements() -> list[Retirement]:
    """The key-version retirement register under CMK_STATE_DIR (empty when no rotation recorded one)."""
    return RetirementRegister(state_dir() / RETIREMENTS_FILE).entries()


@task(name="read-policy-retirements", cache_policy=NO_CACHE)
def read_policy_retirements() -> list[PolicyRetirement]:
    """The policy retirement register under CMK_STATE_DIR (empty when no policy swap recorded one)."""
    return PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).entries()


def _error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, CmkError) else f"{type(exc).__name__}: {exc}"


@task(name="read-azure-side", cache_policy=NO_CACHE)
def read_azure_side(
    services: Services,
    policies: Sequence[PolicyInfo],
    grants: Sequence[ExpectedGrant],
    retirements: Sequence[Retirement] = (),
) -> AzureSideState:
    """Each vault, key and grant scope the policies, journal and retirements name, read once; failures kept."""
    state = AzureSideState()
    vault_ids = {p.vault_id.lower(): p.vault_id for p in policies if p.vault_id}
    vault_ids.update({g.scope.lower(): g.scope for g in grants if g.kind == "access_policy"})
    for vault_id in vault_ids.values():
        try:
            state.vaults[vault_id.lower()] = services.keyvault.get_vault(vault_id)
        except Exception as exc:  # reported per target, never dropped
            state.errors[vault_id] = _error(exc)
    for policy in policies:
        vault = state.vaults.get((policy.vault_id or "").lower())
        if vault is None or not policy.key_name:
            continue
        ident = (vault.uri.lower(), policy.key_name.lower())
        if ident not in state.keys:
            state.keys[ident] = read_key_state(services, vault.uri, policy.key_name)
    for retirement in retirements:
        ident = (retirement.vault_uri.lower(), retirement.key_name.lower())
        if ident not in state.keys:
            state.keys[ident] = read_key_state(services, retirement.vault_uri, retirement.key_name)
    scopes = {g.scope.lower(): g.scope for g in grants if g.kind == "role_assignment"}
    for scope in scopes.values():
        try:
            state.role_assignments[scope.lower()] = services.arm.list_role_assignments(scope)
        except Exception as exc:
            state.errors[scope] = _error(exc)
    return state


def read_key_state(services: Services, vault_uri: str, name: str) -> KeyState:
    """A key's versions and rotation policy, or the reason they could not be read."""
    try:
        versions = tuple(services.keyvault.list_key_versions(vault_uri, name))
        rotation = services.keyvault.get_rotation_policy(vault_uri, name)
    except Exception as exc:
        return KeyState(vault_uri, name, error=_error(exc))
    return KeyState(vault_uri, name, versions=versions, rotation=rotation)


@task(name="publish-inventory", cache_policy=NO_CACHE)
def publish_inventory(report: InventoryReport) -> list[Path]:
    """Keyed table and markdown artifacts (history accumulates per key) and two CSV files."""
    stamp = report.taken_at.strftime("%Y%m%dT%H%M%SZ")
    rows, risks = rows_frame(report.rows), risks_frame(report.risks)
    paths = [
        write_csv(rows, reports_dir(), f"{FLOW}-{stamp}-environments"),
        write_csv(risks, reports_dir(), f"{FLOW}-{stamp}-risks"),
    ]
    counts = report.counts()
    create_table_artifact(
        rows.to_dict(orient="records"),
        key="inventory-environments",
        description=f"CMK inventory {stamp}: one row per environment.",
    )
    create_table_artifact(
        risks.to_dict(orient="records"),
        key="inventory-risks",
        description=f"CMK inventory {stamp}: {counts['high']} high, {counts['medium']} medium, "
        f"{counts['low']} low risk(s).",
    )
    markdown = summary_markdown(report, [str(p) for p in paths])
    create_markdown_artifact(markdown, key="inventory-summary", description=f"CMK inventory {stamp}")
    (reports_dir() / f"{FLOW}-{stamp}-summary.md").write_text(markdown)
    return paths
