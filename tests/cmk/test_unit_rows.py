"""The report row: one type for every flow's per-environment table."""

from __future__ import annotations

import pytest

from cmk.domain.rows import COLUMNS, EnvironmentRow
from cmk.domain.tables import environment_table


def test_rows_from_mappings_keep_report_columns_and_drop_none() -> None:
    row = EnvironmentRow.of({"environment_id": "E1", "status": "failed", "error": None, "phase": "link"})
    assert row.status == "failed" and row.error == "" and not hasattr(row, "phase")


def test_a_row_needs_an_environment_id() -> None:
    with pytest.raises(ValueError, match="environment_id"):
        EnvironmentRow.of({"status": "failed"})


def test_the_table_has_every_column_in_order_with_status_early() -> None:
    frame = environment_table(
        [EnvironmentRow("E1", name="Sales", status="succeeded"), {"environment_id": "E2"}]
    )
    assert list(frame.columns) == COLUMNS and COLUMNS.index("status") < COLUMNS.index("policy_before")
    assert frame.to_dict(orient="records")[1]["status"] == ""
