"""The key-version retirement register: after which date an old key version may be disabled.

A rotation that replaces a key version records here when the old version's grace period ends. The file is
`<CMK_STATE_DIR>/key-retirements.json`, one JSON document:

    {"versions": [{"vault_uri": "https://kv.vault.azure.net", "key_name": "pp-cmk-key",
                   "version": "3f...", "retire_after": "2027-02-01T00:00:00+00:00",
                   "change_id": "CHG-0042", "recorded_at": "2026-11-03T10:00:00+00:00"}]}

`retire_after` is an ISO 8601 time with an offset. The inventory flags versions that are still enabled after
that time (they can now be disabled) and versions that a policy still pins past it (they cannot).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RETIREMENTS_FILE = "key-retirements.json"


@dataclass(frozen=True)
class Retirement:
    """One key version and the time after which it may be retired."""

    vault_uri: str
    key_name: str
    version: str
    retire_after: datetime
    change_id: str = ""
    recorded_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        data = asdict(self)
        data["retire_after"] = self.retire_after.isoformat()
        data["recorded_at"] = self.recorded_at.isoformat() if self.recorded_at else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Retirement:
        """Rebuild from to_dict() output; a time without offset is taken as UTC."""
        return cls(
            vault_uri=str(data["vault_uri"]).rstrip("/"),
            key_name=str(data["key_name"]),
            version=str(data["version"]),
            retire_after=_utc(datetime.fromisoformat(str(data["retire_after"]))),
            change_id=str(data.get("change_id") or ""),
            recorded_at=_utc(datetime.fromisoformat(data["recorded_at"]))
            if data.get("recorded_at")
            else None,
        )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class RetirementRegister:
    """The register file: read every entry, or record one (last record per version wins), atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def entries(self) -> list[Retirement]:
        """Every recorded version; a missing file means none. A malformed file raises ValueError."""
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text())
            return [Retirement.from_dict(item) for item in data.get("versions", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{self.path} is not a valid key-retirement register ({exc}); see cmk/state/key_retirements.py for "
                "its format, fix or remove the file."
            ) from exc

    def record(self, retirement: Retirement) -> None:
        """Add or replace the entry of retirement's key version."""
        with self._lock:
            kept = [
                r
                for r in self.entries()
                if (r.vault_uri.lower(), r.key_name.lower(), r.version.lower())
                != (retirement.vault_uri.lower(), retirement.key_name.lower(), retirement.version.lower())
            ]
            kept.append(retirement)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".retire-", suffix=".json")
            with os.fdopen(fd, "w") as out:
                json.dump({"versions": [r.to_dict() for r in kept]}, out, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
