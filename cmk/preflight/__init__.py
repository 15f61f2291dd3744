"""Preflight: one pure function per check over the models, each returning findings; run_preflight gathers."""

from cmk.preflight.environment import check_environment, find_requested, normalise_geo, same_geo
from cmk.preflight.findings import (
    Finding,
    Severity,
    blocking,
    findings_to_json,
    render_findings_table,
    sort_findings,
)
from cmk.preflight.identity import check_identity_permissions
from cmk.preflight.key import check_key
from cmk.preflight.policy import check_policy
from cmk.preflight.reader import check_reader_grant
from cmk.preflight.run import PreflightReport, run_preflight
from cmk.preflight.vault import check_vault, check_vault_network

__all__ = [
    "Finding",
    "PreflightReport",
    "Severity",
    "blocking",
    "check_environment",
    "check_identity_permissions",
    "check_key",
    "check_policy",
    "check_reader_grant",
    "check_vault",
    "check_vault_network",
    "find_requested",
    "findings_to_json",
    "normalise_geo",
    "render_findings_table",
    "run_preflight",
    "same_geo",
    "sort_findings",
]
