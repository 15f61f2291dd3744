"""A change plan: every write a flow will make, decided before approval, shown in the form, applied after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from cmk.domain.rows import EnvironmentRow
from cmk.preflight import Finding

Service = Literal["arm", "keyvault", "powerplatform"]
RowT = TypeVar("RowT")  # EnvironmentRow for the flows that move environments; lock, unlock, retire: their own


class OutsidePlanError(RuntimeError):
    """A flow tried a write its approved plan does not contain (a bug: nothing outside the plan is written)."""


@dataclass(frozen=True)
class PlannedWrite:
    """One write of the plan: which service, what, on which target; `in_place` = already so, nothing written."""

    service: Service
    action: str
    target: str
    detail: str = ""
    in_place: bool = False

    def line(self) -> str:
        """The write as one markdown list item."""
        state = " (already in place: nothing is written)" if self.in_place else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.action} `{self.target}`{detail}{state}"


@dataclass
class ChangePlan(Generic[RowT]):
    """What one run of a change flow will do, in order, with the preflight findings that decide whether it may."""

    flow: str
    change_id: str
    requested_by: str
    writes: list[PlannedWrite] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    rows: list[RowT] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> list[Finding]:
        """The findings that stop the change before any write."""
        return [f for f in self.findings if f.severity == "blocking"]

    @property
    def pending(self) -> list[PlannedWrite]:
        """The writes that will really be made."""
        return [w for w in self.writes if not w.in_place]

    def add(self, write: PlannedWrite) -> PlannedWrite:
        """Append one write and return it."""
        self.writes.append(write)
        return write

    def permits(self, action: str, target: str) -> bool:
        """Whether the plan contains this write (targets compare case-insensitively, as ARM ids do)."""
        return any(w.action == action and w.target.lower() == target.lower() for w in self.pending)

    def require(self, action: str, target: str) -> None:
        """Raise OutsidePlanError unless the plan contains this write."""
        if not self.permits(action, target):
            raise OutsidePlanError(
                f"{self.flow} {self.change_id}: '{action}' on {target} is not in the approved plan; nothing was "
                "written. This is a bug: report it with the run's logs."
            )

    def writes_markdown(self) -> str:
        """The numbered list of writes for the approval form and the dry-run report."""
        if not self.writes:
            return "_No write: nothing would change._"
        return "\n".join(f"{i}. {w.line()}" for i, w in enumerate(self.writes, 1))

    def notes_markdown(self) -> str:
        """The plan's notes (duplicates removed, adopted resources, ...), or nothing."""
        return "".join(f"- {n}\n" for n in self.notes)


def environment_writes(action: str, rows: Sequence[EnvironmentRow], detail: str = "") -> list[PlannedWrite]:
    """One link/unlink write per planned environment row."""
    return [PlannedWrite("powerplatform", action, r.environment_id, detail or r.name) for r in rows]
