"""Azure-AsyncOperation / Location status resources of ARM's long-running operations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class AsyncOperation:
    """An Azure-AsyncOperation / Location status resource."""

    id: str
    kind: str  # vault | deployment | resourceGroupDelete | purge
    resource_id: str
    started_at: float
    done_at: float
    error: dict[str, Any] | None = None
    error_status: int = 400


class OperationLog:
    """Every operation ARM started, by id."""

    def __init__(self) -> None:
        self.operations: dict[str, AsyncOperation] = {}

    def new(self, kind: str, resource_id: str, started: float, done: float) -> AsyncOperation:
        """Start tracking an operation with a fresh id."""
        op = AsyncOperation(uuid.uuid4().hex, kind, resource_id, started, done)
        self.operations[op.id] = op
        return op

    def add(self, op: AsyncOperation) -> None:
        """Track an operation whose id the caller chose (a deployment's operation id)."""
        self.operations[op.id] = op

    def get(self, op_id: str) -> AsyncOperation | None:
        """The operation, if tracked."""
        return self.operations.get(op_id)
