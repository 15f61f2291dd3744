"""Report tables built with pandas: one row per environment, written as CSV under the reports directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

ENVIRONMENT_COLUMNS = [
    "environment_id",
    "name",
    "geo",
    "sku",
    "key_managed_by_before",
    "key_managed_by_after",
    "policy_before",
    "policy_after",
    "status",
    "duration_seconds",
    "operation_id",
    "error",
    # Rotation: the key (vault/key/version) each environment used before and after; empty for other flows.
    "key_before",
    "key_after",
]


def environment_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A frame with the standard columns, in order, missing values as empty strings."""
    frame = pd.DataFrame(list(rows), columns=ENVIRONMENT_COLUMNS)
    return frame.astype(object).where(frame.notna(), "")


def write_csv(frame: pd.DataFrame, directory: str | Path, name: str) -> Path:
    """Write the frame as CSV and return its path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def status_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many environments ended in each status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.get("status", "unknown")] = counts.get(row.get("status", "unknown"), 0) + 1
    return dict(sorted(counts.items()))
