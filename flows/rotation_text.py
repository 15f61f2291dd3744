"""Markdown for the rotation's approval form and summary (pure text; the flow publishes it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmk.preflight import Finding
from flows.summaries import approvals_section, counts_line, environment_list, findings_section, next_steps


def key_label(vault_id: str | None, key_name: str | None, version: str | None = None) -> str:
    """'kv-name/key-name[/version]' for reports."""
    vault = (vault_id or "").rstrip("/").rsplit("/", 1)[-1]
    return f"{vault}/{key_name or ''}" + (f"/{version}" if version else "")


def plan_markdown(
    change_id: str,
    requested_by: str,
    mode: str,
    lines: Sequence[str],
    rows: Sequence[dict[str, Any]],
    findings: Sequence[Finding],
) -> str:
    """What this rotation will change, for the approver and the dry-run report."""
    bullet = "\n".join(f"- {line}" for line in lines)
    return (
        f"**Change** `{change_id}` requested by **{requested_by}**, mode **{mode}**\n\n{bullet}\n\n"
        f"### Environments ({len(rows)})\n{environment_list(rows)}\n\n### Preflight\n{findings_section(findings)}\n"
    )


def summary_markdown(
    title: str,
    lines: Sequence[str],
    rows: Sequence[dict[str, Any]],
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
