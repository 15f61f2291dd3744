"""A bounded log of the requests the simulator answered (no headers, no bodies, so no secrets)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class LoggedRequest:
    """One answered request."""

    seq: int
    time: float  # simulated
    service: str
    operation: str
    method: str
    path: str
    status: int
    caller: str | None
    duration_ms: float
    fault: str | None = None
    target: str | None = None  # e.g. the environment id of a BAP link


class RequestLog:
    """The most recent requests, oldest first."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=maxlen)
        self._seq = 0
        self._lock = threading.Lock()

    def record(self, **fields: Any) -> LoggedRequest:
        """Append an entry and return it."""
        with self._lock:
            self._seq += 1
            entry = LoggedRequest(seq=self._seq, **fields)
            self._entries.append(entry)
            return entry

    def query(
        self,
        *,
        since: int = 0,
        service: str | None = None,
        method: str | None = None,
        operation: str | None = None,
        path_contains: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Entries after seq `since` that match every given filter."""
        with self._lock:
            entries = list(self._entries)
        out = []
        for e in entries:
            if e.seq <= since:
                continue
            if service and e.service != service:
                continue
            if method and e.method.upper() != method.upper():
                continue
            if operation and e.operation != operation:
                continue
            if path_contains and path_contains.lower() not in e.path.lower():
                continue
            out.append(asdict(e))
        return out[-limit:] if limit else out

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest entry."""
        return self._seq

    def clear(self) -> None:
        """Forget every entry (sequence numbers keep counting)."""
        with self._lock:
            self._entries.clear()
