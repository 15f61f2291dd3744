"""The policy retirement register: when an old enterprise policy, its key and its vault access may be retired.

A policy-swap rotation records here, per old policy, the date after which it may be retired (at least 30 days
after the swap). The file is `<CMK_STATE_DIR>/policy-retirements.json`, one JSON document:

    {"policies": [{"change_id": "CHG-0042", "policy_id": "/subscriptions/.../enterprisePolicies/ep-old",
                   "system_id": "/regions/europe/...", "principal_id": "...", "vault_id": "...",
                   "key_name": "pp-cmk-key", "new_policy_id": "...", "new_principal_id": "...",
                   "new_vault_id": "...", "retire_after": "2027-01-02T10:00:00+00:00",
                   "recorded_at": "...", "retired_at": null, "retired_by": null, "retired_in": null}]}

Key versions replaced by a key-version rotation are recorded in `cmk/state/key_retirements.py` (key-retirements.json).
The retire flow reads both; it changes an entry only to mark it retired.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

POLICY_RETIREMENTS_FILE = "policy-retirements.json"


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PolicyRetirement:
    """An old policy replaced by a swap: what it used, what replaced it, and when it may go."""

    change_id: str
    policy_id: str
    system_id: str
    principal_id: str
    vault_id: str
    key_name: str
    new_policy_id: str
    new_principal_id: str
    new_vault_id: str
    retire_after: datetime
    recorded_at: datetime
    retired_at: datetime | None = None
    retired_by: str | None = None
    retired_in: str | None = None

    @property
    def retired(self) -> bool:
        """Whether a retire run has already retired it."""
        return self.retired_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyRetirement:
        """Rebuild from to_dict() output; times without an offset are UTC."""
        values = {k: data.get(k) for k in cls.__dataclass_fields__}
        for name in ("retire_after", "recorded_at", "retired_at"):
            values[name] = _time(values[name])
        if values["retire_after"] is None or values["recorded_at"] is None:
            raise ValueError("retire_after and recorded_at are required")
        return cls(**values)


class PolicyRetirementRegister:
    """The register file, read and written atomically under a file lock (safe across worker processes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_suffix(".lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _read(self) -> list[PolicyRetirement]:
        if not self.path.exists():
            return []
        try:
            return [
                PolicyRetirement.from_dict(item) for item in json.loads(self.path.read_text())["policies"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{self.path} is not a valid policy retirement register ({exc}); see "
                "cmk/state/policy_retirements.py for its format, then fix or restore the file."
            ) from exc

    def _write(self, entries: list[PolicyRetirement]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".policy-retire-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump({"policies": [e.to_dict() for e in entries]}, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def entries(self) -> list[PolicyRetirement]:
        """Every recorded policy; a missing file means none."""
        with self._locked():
            return self._read()

    def find(self, policy_id: str) -> PolicyRetirement | None:
        """The entry of one old policy (case-insensitive id), or None."""
        return next((e for e in self.entries() if e.policy_id.lower() == policy_id.lower()), None)

    def record(self, entry: PolicyRetirement) -> PolicyRetirement:
        """Add the entry; an existing one for the policy keeps the later retire_after (grace never shrinks)."""
        with self._locked():
            entries = self._read()
            for index, existing in enumerate(entries):
                if existing.policy_id.lower() == entry.policy_id.lower():
                    kept = entry if entry.retire_after >= existing.retire_after else existing
                    entries[index] = replace(kept, retired_at=None, retired_by=None, retired_in=None)
                    self._write(entries)
                    return entries[index]
            entries.append(entry)
            self._write(entries)
            return entry

    def mark_retired(self, policy_id: str, *, by: str, change_id: str, at: datetime) -> PolicyRetirement:
        """Mark an old policy as retired by a retire run."""
        with self._locked():
            entries = self._read()
            for index, existing in enumerate(entries):
                if existing.policy_id.lower() == policy_id.lower():
                    entries[index] = replace(existing, retired_at=at, retired_by=by, retired_in=change_id)
                    self._write(entries)
                    return entries[index]
        raise KeyError(f"policy {policy_id} is not in the policy retirement register")
