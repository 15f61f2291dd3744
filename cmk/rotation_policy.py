"""A key's rotation policy as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RotationPolicyInfo:
    """What matters of a key rotation policy: its expiry and its automatic Rotate trigger."""

    expiry_time: str | None  # ISO 8601 duration given to new versions, e.g. P1Y
    rotate_after_create: str | None = None
    rotate_before_expiry: str | None = None
    notify_before_expiry: str | None = None

    @property
    def rotates(self) -> bool:
        """Whether the key rotates itself (a Rotate lifetime action exists)."""
        return bool(self.rotate_after_create or self.rotate_before_expiry)


def rotation_policy_info(policy: Any) -> RotationPolicyInfo:
    """A RotationPolicyInfo from the SDK's KeyRotationPolicy."""
    values: dict[str, str | None] = {}
    for action in getattr(policy, "lifetime_actions", None) or []:
        kind = str(getattr(action.action, "value", action.action)).lower()
        if kind == "rotate":
            values["rotate_after_create"] = action.time_after_create
            values["rotate_before_expiry"] = action.time_before_expiry
        elif kind == "notify":
            values["notify_before_expiry"] = action.time_before_expiry
    return RotationPolicyInfo(expiry_time=getattr(policy, "expires_in", None), **values)
