"""Markdown for approvals and summaries (pure text; the flows publish it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmk.domain.rows import EnvironmentRow
from cmk.domain.tables import HasStatus, markdown_table, status_counts
from cmk.preflight import Finding, render_findings_table

ENVIRONMENT_HEADINGS = {
    "name": "Environment",
    "id": "Id",
    "geo": "Geo",
    "sku": "SKU",
    "key": "Key managed by",
}


def environment_list(rows: Sequence[EnvironmentRow], limit: int = 50) -> str:
    """A markdown table of environments (name, id, geo, SKU, key managed by), cut at limit rows."""
    shown = [
        {
            "name": r.name,
            "id": f"`{r.environment_id}`",
            "geo": r.geo,
            "sku": r.sku,
            "key": r.key_managed_by_before,
        }
        for r in list(rows)[:limit]
    ]
    if len(rows) > limit:
        shown.append({"name": f"… and {len(rows) - limit} more"})
    return markdown_table(shown, ENVIRONMENT_HEADINGS)


def findings_section(findings: Sequence[Finding]) -> str:
    """The preflight findings, or a line saying there were none."""
    if not findings:
        return "No preflight findings: every check passed."
    return render_findings_table(list(findings))


def approvals_section(approvals: Sequence[dict[str, Any]], refusals: Sequence[str]) -> str:
    """Who answered, when, and which answers were refused."""
    lines = []
    for a in approvals:
        lines.append(
            f"- **{a['decision']}** by {a['approver']} at {a['at']} (ticket {a['change_ticket'] or '—'})"
            + (f": {a['comment']}" if a.get("comment") else "")
        )
    for reason in refusals:
        lines.append(f"- refused answer: {reason}")
    return "\n".join(lines) if lines else "- no approval was given"


def counts_line(rows: Sequence[HasStatus]) -> str:
    """'succeeded: 5, failed: 1' style counts."""
    counts = status_counts(rows)
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "no environments"


def next_steps(rows: Sequence[EnvironmentRow], change_id: str, flow: str) -> str:
    """What to do about failures and environments that were not started."""
    failed = [r for r in rows if r.status == "failed"]
    waiting = [r for r in rows if r.status == "not-started"]
    if not failed and not waiting:
        return "Nothing to do: every environment is in the target state."
    lines = []
    for r in failed:
        lines.append(f"- `{r.environment_id}` failed: {r.error or 'unknown reason'}")
    if waiting:
        lines.append(f"- {len(waiting)} environment(s) were not started because the run halted.")
    lines.append(
        f"\nFix the causes above, then run **{flow}** again with change id `{change_id}`: finished environments "
        "are skipped and operations still in flight are resumed, never posted twice."
    )
    return "\n".join(lines)
