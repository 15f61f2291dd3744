"""Publish reports: Prefect artifacts (progress, tables, markdown) and the CSV under the reports directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import pandas as pd
from prefect import task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from cmk.domain.rows import EnvironmentRow
from cmk.domain.tables import environment_table, write_csv
from cmk.inventory.report import InventoryReport, risks_frame, rows_frame, summary_markdown
from cmk.plans.lockdown import LockRow
from tasks.context import Change, reports_dir

INVENTORY = "inventory"  # the file prefix of the inventory's reports


@task(name="publish-inventory", cache_policy=NO_CACHE)
def publish_inventory(report: InventoryReport, self_healing: Sequence[str] = ()) -> list[Path]:
    """Keyed table and markdown artifacts (history accumulates per key) and two CSV files."""
    stamp = report.taken_at.strftime("%Y%m%dT%H%M%SZ")
    rows, risks = rows_frame(report.rows), risks_frame(report.risks)
    paths = [
        write_csv(rows, reports_dir(), f"{INVENTORY}-{stamp}-environments"),
        write_csv(risks, reports_dir(), f"{INVENTORY}-{stamp}-risks"),
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
    markdown = summary_markdown(report, [str(p) for p in paths], self_healing)
    create_markdown_artifact(markdown, key="inventory-summary", description=f"CMK inventory {stamp}")
    (reports_dir() / f"{INVENTORY}-{stamp}-summary.md").write_text(markdown)
    return paths


BLAST_COLUMNS = [
    "environment_id",
    "name",
    "geo",
    "sku",
    "policy",
    "runtime_before",
    "link_status",
    "deleted_after_days",
    "deletion_deadline",
    "deadline_documented",
]


OUTCOME_COLUMNS = [
    "environment_id",
    "name",
    "geo",
    "sku",
    "policy",
    "runtime_before",
    "runtime_after",
    "deletion_deadline",
    "status",
    "operation_id",
    "duration_seconds",
    "error",
]


def _frame(rows: Sequence[LockRow], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([r.to_dict() for r in rows], columns=columns)
    return frame.astype(object).where(frame.notna(), "")


def publish_table(
    change: Change, name: str, rows: Sequence[LockRow], columns: list[str], description: str
) -> Path:
    """A keyed table artifact `<flow>-<name>` and its CSV; returns the CSV path."""
    frame = _frame(rows, columns)
    create_table_artifact(
        frame.to_dict(orient="records"),
        key=artifact_key(change.flow, name),
        description=f"**{change.flow}** change `{change.change_id}`: {description}",
    )
    return write_csv(frame, reports_dir(), f"{change.flow}-{change.change_id}-{name}")


def publish_blast_radius(change: Change, rows: Sequence[LockRow]) -> Path:
    """Every environment that goes offline, with its SKU and deletion deadline."""
    return publish_table(
        change,
        "blast-radius",
        rows,
        BLAST_COLUMNS,
        "every environment that goes offline when the policy loses key access, and when it would be deleted.",
    )


def publish_outcome(change: Change, rows: Sequence[LockRow]) -> Path:
    """One row per environment: runtime before and after, and what happened."""
    return publish_table(change, "environments", rows, OUTCOME_COLUMNS, "one row per environment.")


def artifact_key(*parts: str) -> str:
    """An artifact key from parts: lower-case letters, digits and dashes only (Prefect's rule)."""
    raw = "-".join(parts).lower()
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in raw)
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return cleaned.strip("-")[:100]


class Progress:
    """A progress artifact updated as environments finish."""

    def __init__(self, total: int, description: str) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.id: UUID = create_progress_artifact(0.0, description=description)

    def advance(self, count: int = 1) -> None:
        """Count finished environments and update the artifact."""
        self.done += count
        update_progress_artifact(self.id, min(100.0, 100.0 * self.done / self.total))


def publish_environment_table(change: Change, rows: Sequence[EnvironmentRow]) -> Path:
    """The per-environment table as a keyed artifact and as CSV; returns the CSV path."""
    frame = environment_table(rows)
    create_table_artifact(
        frame.to_dict(orient="records"),
        key=artifact_key(change.flow, "environments"),
        description=f"**{change.flow}** change `{change.change_id}`: one row per environment.",
    )
    return write_csv(frame, reports_dir(), f"{change.flow}-{change.change_id}-environments")


def publish_summary(change: Change, markdown: str) -> None:
    """The run's markdown summary as a keyed artifact, so history accumulates per flow."""
    create_markdown_artifact(
        markdown,
        key=artifact_key(change.flow, "summary"),
        description=f"{change.flow} change {change.change_id}",
    )
    path = reports_dir()
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{change.flow}-{change.change_id}-summary.md").write_text(markdown)


def publish_checklist(change: Change, markdown: str) -> Path:
    """A checklist for the admin (steps no API can do) as a keyed artifact and a markdown file; returns the file."""
    create_markdown_artifact(
        markdown,
        key=artifact_key(change.flow, "checklist"),
        description=f"{change.flow} change {change.change_id}: steps for the admin center",
    )
    path = reports_dir()
    path.mkdir(parents=True, exist_ok=True)
    target = path / f"{change.flow}-{change.change_id}-checklist.md"
    target.write_text(markdown)
    return target


def publish_journal(change: Change) -> None:
    """This change's audit journal entries as a table artifact."""
    rows = [
        {
            "time": e.get("time", ""),
            "actor": e.get("actor", ""),
            "action": e.get("action", ""),
            "target": e.get("target", ""),
            "outcome": e.get("outcome", ""),
            "correlation_id": e.get("correlation_id") or "",
        }
        for e in change.journal_entries()
    ]
    create_table_artifact(
        rows,
        key=artifact_key(change.flow, "journal"),
        description=f"Audit journal of change {change.change_id}",
    )
