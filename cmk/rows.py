"""The one row type of every per-environment report: what an environment was, what was done, what it is now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

Status = str  # planned, succeeded, already-done, skipped-done, failed, not-started, ...


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

    @classmethod
    def of(cls, data: EnvironmentRow | Mapping[str, Any]) -> EnvironmentRow:
        """A row from a row or from a mapping with these keys (other keys are not report columns and are left)."""
        if isinstance(data, EnvironmentRow):
            return data
        known = {f.name for f in fields(cls)}
        values = {k: ("" if v is None else v) for k, v in data.items() if k in known}
        if not values.get("environment_id"):
            raise ValueError(f"a report row needs an environment_id; got keys {sorted(data)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The row as report columns, in order."""
        return asdict(self)


COLUMNS: list[str] = [f.name for f in fields(EnvironmentRow)]
