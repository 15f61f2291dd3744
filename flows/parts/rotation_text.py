"""Markdown for the rotation's approval form and summary (pure text; the flow publishes it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmk.domain.rows import EnvironmentRow
from cmk.plans.change import ChangePlan
from cmk.plans.rotation import key_label
from flows.parts.summaries import (
    approvals_section,
    counts_line,
    environment_list,
    findings_section,
    next_steps,
)

__all__ = ["after_notes", "key_label", "plan_markdown", "summary_markdown", "writes_section"]
WRITES_SHOWN = 100  # a swap of thousands lists one link per environment: the table below has them all


def writes_section(plan: ChangePlan, limit: int = WRITES_SHOWN) -> str:
    """The plan's numbered writes, cut at limit lines for very large swaps."""
    if len(plan.writes) <= limit:
        return plan.writes_markdown()
    shown = ChangePlan(plan.flow, plan.change_id, plan.requested_by, writes=plan.writes[:limit])
    rest = plan.writes[limit:]
    return (
        f"{shown.writes_markdown()}\n\n… and {len(rest)} more writes of the same kinds (one per environment)."
    )


def plan_markdown(plan: ChangePlan, mode: str, lines: Sequence[str]) -> str:
    """What this rotation will change, for the approver and the dry-run report."""
    bullet = "\n".join(f"- {line}" for line in lines)
    pending, in_place = len(plan.pending), len(plan.writes) - len(plan.pending)
    notes = f"\n### Notes\n{plan.notes_markdown()}" if plan.notes else ""
    return (
        f"**Change** `{plan.change_id}` requested by **{plan.requested_by}**, mode **{mode}**\n\n{bullet}\n\n"
        f"### Planned writes ({pending} to make, {in_place} already in place)\n"
        "Nothing has been written yet; after approval these are made in this order and nothing else.\n\n"
        f"{writes_section(plan)}\n\n"
        f"### Environments ({len(plan.rows)})\n{environment_list(plan.rows)}\n\n"
        f"### Preflight\n{findings_section(plan.findings)}\n{notes}"
    )


def summary_markdown(
    title: str,
    lines: Sequence[str],
    rows: Sequence[EnvironmentRow],
    approvals: Sequence[dict[str, Any]],
    refusals: Sequence[str],
    change_id: str,
    flow: str,
) -> str:
    """The final report."""
    bullet = "\n".join(f"- {line}" for line in lines)
    return (
        f"# {title}\n\n{bullet}\n- Result: {counts_line(rows)}\n\n"
        f"## Approvals\n{approvals_section(approvals, refusals)}\n\n"
        f"## What to do next\n{next_steps(rows, change_id, flow)}\n"
    )


def after_notes(rows: Sequence[EnvironmentRow]) -> list[str]:
    """One line per kind of end state that is not the new key (Microsoft key, old policy, not read back)."""
    counts: dict[str, int] = {}
    for row in rows:
        if row.note_after:
            counts[row.note_after] = counts.get(row.note_after, 0) + 1
    return [f"{n} environment(s) {note}" for note, n in sorted(counts.items())]
