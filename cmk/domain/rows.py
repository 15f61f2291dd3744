"""The one row type of every per-environment report: what an environment was, what was done, what it is now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cmk.domain.models import EnvironmentInfo

Status = str  # planned, succeeded, already-done, skipped-done, failed, not-started, ...

NOT_A_COLUMN = {"column": False}


@dataclass
class EnvironmentRow:
    """One environment in a change report; `*_after` fields are read back from the service, never assumed."""

    environment_id: str
    name: str = ""
    geo: str = ""
    sku: str = ""
    status: Status = ""
    error: str = ""
    key_managed_by_before: str = ""
    key_managed_by_after: str = ""
    policy_before: str = ""
    policy_after: str = ""
    key_before: str = ""
    key_after: str = ""
    operation_id: str = ""
    duration_seconds: float | str = ""
    # Not report columns: a line for the summary, and whether the *_after fields were read from the service.
    note_after: str = field(default="", metadata=NOT_A_COLUMN)
    read_back: bool = field(default=False, metadata=NOT_A_COLUMN)

    @classmethod
    def planned(cls, env: EnvironmentInfo, **facts: Any) -> EnvironmentRow:
        """An environment's row before the change: name, geo, SKU and who manages its key (facts add or override)."""
        before = {
            "name": env.display_name or "",
            "geo": env.location or "",
            "sku": env.sku or "",
            "key_managed_by_before": env.key_managed_by or "",
        }
        return cls(env.id, **{**before, **facts})

    @classmethod
    def of(cls, data: EnvironmentRow | Mapping[str, Any]) -> EnvironmentRow:
        """A row from a row or from a mapping with these keys (other keys are not report columns and are left).

        `read_back` comes from `to_checkpoint()`; in the dict rows of earlier checkpoints, a row was read back
        when it has `key_managed_by_after`.
        """
        if isinstance(data, EnvironmentRow):
            return data
        known = {f.name for f in fields(cls)}
        values = {k: ("" if v is None else v) for k, v in data.items() if k in known}
        if not values.get("environment_id"):
            raise ValueError(f"a report row needs an environment_id; got keys {sorted(data)}")
        values["read_back"] = bool(data.get("read_back", "key_managed_by_after" in data))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The row as report columns, in order (and its note, when it has one)."""
        out = {name: getattr(self, name) for name in COLUMNS}
        if self.note_after:
            out["note_after"] = self.note_after
        return out

    def to_checkpoint(self) -> dict[str, Any]:
        """The row as a checkpoint stores it: its columns and whether its after-state was read back."""
        return {**self.to_dict(), "read_back": self.read_back}


COLUMNS: list[str] = [f.name for f in fields(EnvironmentRow) if f.metadata.get("column", True)]


def to_dicts(rows: list[EnvironmentRow]) -> list[dict[str, Any]]:
    """Rows as JSON-like dicts, for a run's result."""
    return [r.to_dict() for r in rows]
