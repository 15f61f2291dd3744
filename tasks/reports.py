"""Publish reports: Prefect artifacts (progress, table, markdown) and the CSV under the reports directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from cmk.reports import environment_table, write_csv
from cmk.rows import EnvironmentRow
from tasks.context import Change, reports_dir


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
