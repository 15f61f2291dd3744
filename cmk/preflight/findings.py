"""Findings: what a preflight check reports, and how findings render as a table and as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cmk.domain.tables import markdown_table

Severity = Literal["blocking", "warning", "info"]
_ORDER = {"blocking": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """One result of a check: a stable code, its severity, what it is about, and what to do."""

    code: str
    severity: Severity
    target: str
    message: str
    remediation: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that forbid any mutation."""
    return [f for f in findings if f.severity == "blocking"]


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Blocking first, then warnings, then info; stable within a severity."""
    return sorted(findings, key=lambda f: _ORDER[f.severity])


FINDING_COLUMNS = {
    "severity": "severity",
    "code": "code",
    "target": "target",
    "message": "finding",
    "remediation": "what to do",
}


def render_findings_table(findings: Iterable[Finding]) -> str:
    """A markdown table of findings (blocking first); a one-line note when there are none."""
    rows = sort_findings(findings)
    if not rows:
        return "No findings: every preflight check passed."
    records = [{**f.to_dict(), "code": f"`{f.code}`"} for f in rows]
    return markdown_table(records, FINDING_COLUMNS)


def findings_to_json(findings: Iterable[Finding]) -> str:
    """Findings as a JSON array (blocking first)."""
    return json.dumps([f.to_dict() for f in sort_findings(findings)], indent=2)
