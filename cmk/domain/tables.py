"""Report tables built with pandas: one row per environment as CSV under the reports directory, and markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from cmk.domain.rows import COLUMNS, EnvironmentRow

ENVIRONMENT_COLUMNS = COLUMNS


class HasStatus(Protocol):
    """A report row of any flow: it has a status."""

    @property
    def status(self) -> str: ...


def environment_table(rows: Sequence[EnvironmentRow | Mapping[str, Any]]) -> pd.DataFrame:
    """A frame of typed rows with the standard columns in order (status right after the environment's facts)."""
    frame = pd.DataFrame([EnvironmentRow.of(r).to_dict() for r in rows], columns=ENVIRONMENT_COLUMNS)
    return frame.astype(object).where(frame.notna(), "")


def write_csv(frame: pd.DataFrame, directory: str | Path, name: str) -> Path:
    """Write the frame as CSV and return its path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def status_counts(rows: Sequence[HasStatus]) -> dict[str, int]:
    """How many environments ended in each status."""
    counts: dict[str, int] = {}
    for row in rows:
        status = row.status or "unknown"
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))


def _cell(value: Any) -> str:
    """A markdown cell: pipes escaped, one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(records: Sequence[Mapping[str, Any]], columns: Mapping[str, str]) -> str:
    """A GitHub markdown table of records; `columns` maps each record key to its heading, in order."""
    frame = pd.DataFrame(
        [{h: _cell(r.get(k, "")) for k, h in columns.items()} for r in records],
        columns=list(columns.values()),
    )
    return frame.to_markdown(index=False, tablefmt="github")
