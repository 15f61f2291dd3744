"""Lock and unlock reports: the blast radius and the per-environment outcome as table artifacts and CSV."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from prefect.artifacts import create_table_artifact

from cmk.lockdown import LockRow
from cmk.reports import write_csv
from tasks.context import Change, reports_dir
from tasks.reports import artifact_key

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
