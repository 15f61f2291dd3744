"""Per-change checkpoints on disk, so a re-run with the same change id resumes instead of repeating."""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

COMPACT_FROM = 100  # environments in a checkpoint from which it is written without indentation
_CHANGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def validate_change_id(change_id: str) -> str:
    """The change id, or a ValueError saying what a valid one looks like."""
    if not _CHANGE_ID.match(change_id or ""):
        raise ValueError(
            f"change_id {change_id!r} is not valid: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (for example CHG-2026-0042)."
        )
    return change_id


class CheckpointStore:
    """One JSON document per change id: step results and per-environment progress, written atomically."""

    def __init__(self, directory: str | Path, change_id: str, flow: str) -> None:
        self.change_id = validate_change_id(change_id)
        self.flow = flow
        self.path = Path(directory) / f"{change_id}.json"
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {"change_id": change_id, "flow": flow, "steps": {}, "environments": {}}
        if self.path.exists():
            self._data = json.loads(self.path.read_text())
            if self._data.get("flow") != flow:
                raise ValueError(
                    f"change_id {change_id!r} already belongs to a '{self._data.get('flow')}' run; "
                    f"use a new change id for this '{flow}' run."
                )

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ckpt-", suffix=".json")
        # Indented while small enough to read by eye; compact for big changes, where the file is rewritten
        # after every accepted operation and indenting would dominate the cost.
        indent = 2 if len(self._data["environments"]) <= COMPACT_FROM else None
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(self._data, indent=indent, sort_keys=True, default=str))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    @property
    def is_new(self) -> bool:
        """Whether nothing has been recorded for this change yet."""
        return not self._data["steps"] and not self._data["environments"]

    def step(self, name: str) -> dict[str, Any] | None:
        """The recorded result of a finished step, or None."""
        with self._lock:
            return self._data["steps"].get(name)

    def finish_step(self, name: str, result: dict[str, Any]) -> None:
        """Record a step as done with its result."""
        with self._lock:
            self._data["steps"][name] = result
            self._save()

    def environment(self, env_id: str) -> dict[str, Any]:
        """The recorded progress of one environment (empty when untouched)."""
        with self._lock:
            return dict(self._data["environments"].get(env_id.lower(), {}))

    def update_environment(self, env_id: str, **fields: Any) -> dict[str, Any]:
        """Merge fields into an environment's progress and persist at once."""
        with self._lock:
            entry = self._data["environments"].setdefault(env_id.lower(), {})
            entry.update(fields)
            self._save()
            return dict(entry)

    def update_environments(self, updates: dict[str, dict[str, Any]]) -> None:
        """Merge fields into several environments' progress and persist them with one write."""
        if not updates:
            return
        with self._lock:
            for env_id, fields in updates.items():
                self._data["environments"].setdefault(env_id.lower(), {}).update(fields)
            self._save()

    def environments(self) -> dict[str, dict[str, Any]]:
        """Progress of every environment touched by this change."""
        with self._lock:
            return {k: dict(v) for k, v in self._data["environments"].items()}
