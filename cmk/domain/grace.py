"""Grace periods before anything an environment used may be retired, and the clock they are measured with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import humanize

# Microsoft: keep the previous key version enabled at least 28 days after a rotation, and the old key, its
# vault access and the old policy at least 30 days after environments moved to a new policy.
KEY_VERSION_GRACE_DAYS = 28
POLICY_GRACE_DAYS = 30


def utc_now() -> datetime:
    """The current time in UTC; the one clock every grace check reads (tests replace this function)."""
    return datetime.now(UTC)


def retire_after(start: datetime, days: int) -> datetime:
    """The first moment something recorded at `start` may be retired after a grace of `days` days."""
    if days < 0:
        raise ValueError("a grace period cannot be negative.")
    moment = start if start.tzinfo else start.replace(tzinfo=UTC)
    return (moment + timedelta(days=days)).astimezone(UTC)


def grace_left(retire_after_at: datetime, now: datetime) -> timedelta:
    """How much of the grace period remains at `now` (zero or negative once it has passed)."""
    when = retire_after_at if retire_after_at.tzinfo else retire_after_at.replace(tzinfo=UTC)
    return when - now


def describe_left(left: timedelta) -> str:
    """'12 days and 3 hours' style text for a remaining grace period (minutes at the finest)."""
    return humanize.precisedelta(max(left, timedelta(0)), minimum_unit="minutes", format="%0.0f")
