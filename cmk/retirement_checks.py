"""Why an old key version or an old policy may not be retired yet (safety invariant 2); pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cmk.grace import describe_left, grace_left
from cmk.models import EnvironmentInfo
from cmk.policy_retirements import PolicyRetirement


def grace_blocker(retire_after_at: datetime, now: datetime) -> str | None:
    """A reason when the grace period has not passed at `now`, else None."""
    left = grace_left(retire_after_at, now)
    if left.total_seconds() > 0:
        return (
            f"its grace period runs until {retire_after_at.isoformat(timespec='seconds')} "
            f"({describe_left(left)} left)"
        )
    return None


def dependent_environments(envs: Sequence[EnvironmentInfo], system_id: str) -> list[EnvironmentInfo]:
    """Environments linked, linking, unlinking or failed-linking to the policy with this systemId."""
    wanted = system_id.lower()
    return [e for e in envs if e.cmk is not None and (e.cmk.system_id or "").lower() == wanted]


def key_version_blockers(
    version: str,
    retire_after_at: datetime,
    now: datetime,
    *,
    latest_version: str | None,
    pinning_policies: Sequence[str] = (),
) -> list[str]:
    """Why this key version cannot be disabled now; empty when it can."""
    reasons = []
    grace = grace_blocker(retire_after_at, now)
    if grace:
        reasons.append(grace)
    if latest_version is not None and latest_version.lower() == version.lower():
        reasons.append(
            "it is the key's current version: every policy that follows the key uses it, so disabling it "
            "would lock their environments"
        )
    if pinning_policies:
        reasons.append(f"enterprise policy {', '.join(sorted(pinning_policies))} pins this version")
    return reasons


def policy_blockers(
    entry: PolicyRetirement, now: datetime, envs: Sequence[EnvironmentInfo], *, limit: int = 5
) -> list[str]:
    """Why the old policy, its identity's key access and the transition grants cannot be removed now."""
    reasons = []
    grace = grace_blocker(entry.retire_after, now)
    if grace:
        reasons.append(grace)
    dependent = dependent_environments(envs, entry.system_id)
    if dependent:
        shown = ", ".join(
            f"{e.display_name} ({e.id}, {e.cmk.status if e.cmk else ''})" for e in dependent[:limit]
        )
        more = f" and {len(dependent) - limit} more" if len(dependent) > limit else ""
        reasons.append(f"{len(dependent)} environment(s) still depend on it: {shown}{more}")
    return reasons
