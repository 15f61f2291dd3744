"""The audit journal: append-only JSON lines, one per mutation, secrets scrubbed, safe across threads."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"secret|password|passwd|token|authorization|identity_header|credential|private", re.I
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")


def scrub(value: Any) -> Any:
    """A JSON-safe copy of value with secret-looking keys, SecretStr values and bearer tokens redacted."""
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, BaseModel):
        return scrub(value.model_dump())
    if is_dataclass(value) and not isinstance(value, type):
        return scrub(asdict(value))
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if _SECRET_KEY.search(str(k)) and v is not None else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [scrub(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        return _BEARER.sub("Bearer " + REDACTED, value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


class Journal:
    """Append-only JSON lines, one per mutation: who, what, target, before, after, correlation id, time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        before: Any,
        after: Any,
        correlation_id: str | None = None,
        change_id: str | None = None,
        outcome: str = "succeeded",
        detail: Any = None,
    ) -> dict[str, Any]:
        """Append one entry and return it."""
        entry = scrub(
            {
                "id": uuid.uuid4().hex,
                "time": datetime.now(UTC).isoformat(),
                "actor": actor,
                "action": action,
                "target": target,
                "before": before,
                "after": after,
                "correlation_id": correlation_id,
                "change_id": change_id,
                "outcome": outcome,
                "detail": detail,
            }
        )
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
        with self._lock:
            # One write per line on an O_APPEND descriptor: lines from other processes never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        return entry

    def entries(
        self, change_id: str | None = None, action: str | None = None, target: str | None = None
    ) -> list[dict[str, Any]]:
        """Entries in write order, filtered by change id, action and target (case-insensitive target)."""
        if not self.path.exists():
            return []
        out = []
        with self._lock, self.path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                entry = json.loads(line)
                if change_id is not None and entry.get("change_id") != change_id:
                    continue
                if action is not None and entry.get("action") != action:
                    continue
                if target is not None and str(entry.get("target", "")).lower() != target.lower():
                    continue
                out.append(entry)
        return out


class JournalContext:
    """What a service needs to journal: the journal (optional), the actor and the current change id."""

    def __init__(self, journal: Journal | None, actor: str, change_id: str | None = None) -> None:
        self.journal = journal
        self.actor = actor
        self.change_id = change_id

    def record(self, **kwargs: Any) -> dict[str, Any] | None:
        """Record an entry when a journal is configured."""
        if self.journal is None:
            return None
        kwargs.setdefault("change_id", self.change_id)
        return self.journal.record(actor=self.actor, **kwargs)
