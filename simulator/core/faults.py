"""Fault injection rules matched against each request before its handler runs."""

from __future__ import annotations

import random
import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from simulator.core.errors import SimError


@dataclass
class FaultRule:
    """Answer matching requests with an error and/or a delay, N times or with a probability."""

    status: int = 500
    code: str = "InternalServerError"
    message: str = "Injected fault."
    service: str | None = None  # arm | keyvault | bap | identity
    operation: str | None = None  # e.g. "bap.link", "keyvault.create_key"
    path: str | None = None  # regex searched in the path
    method: str | None = None
    retry_after: float | None = None
    delay_ms: int = 0
    count: int | None = None  # None: every matching request
    probability: float = 1.0
    delay_only: bool = False  # only slow the request down, then handle it normally
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0

    def matches(self, service: str, operation: str, method: str, path: str) -> bool:
        """Whether this rule applies to the request."""
        if self.service and self.service.lower() != service.lower():
            return False
        if self.operation and self.operation.lower() != operation.lower():
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path and not re.search(self.path, path, re.IGNORECASE):
            return False
        return True

    def as_error(self) -> SimError:
        """The error this rule answers with."""
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(int(self.retry_after) if self.retry_after >= 1 else self.retry_after)
        return SimError(self.status, self.code, self.message, headers=headers)


_FIELDS = {f for f in FaultRule.__dataclass_fields__ if f not in {"id", "hits"}}


class FaultStore:
    """The active fault rules."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, spec: dict[str, Any]) -> FaultRule:
        """Add a rule from its JSON form; unknown fields are refused."""
        unknown = set(spec) - _FIELDS
        if unknown:
            raise SimError(400, "InvalidFaultRule", f"Unknown fault rule fields: {sorted(unknown)}.")
        try:
            rule = FaultRule(**spec)
        except TypeError as exc:
            raise SimError(400, "InvalidFaultRule", str(exc)) from exc
        if not 0 <= rule.probability <= 1:
            raise SimError(400, "InvalidFaultRule", "probability must be between 0 and 1.")
        with self._lock:
            self._rules.append(rule)
        return rule

    def list(self) -> list[dict[str, Any]]:
        """Every rule with its hit count."""
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def clear(self, rule_id: str | None = None) -> int:
        """Remove one rule or all; returns how many were removed."""
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if rule_id is not None and r.id != rule_id]
            return before - len(self._rules)

    def pick(self, service: str, operation: str, method: str, path: str) -> FaultRule | None:
        """The first rule that fires for this request, consuming one of its count."""
        with self._lock:
            for rule in self._rules:
                if rule.count is not None and rule.hits >= rule.count:
                    continue
                if not rule.matches(service, operation, method, path):
                    continue
                if rule.probability < 1 and self._random.random() >= rule.probability:
                    continue
                rule.hits += 1
                return rule
        return None
