"""What a move reports about an environment: its facts before and after, and what must be finished after a halt."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cmk.domain.models import EnvironmentInfo
from cmk.domain.rows import EnvironmentRow


def environment_facts(env: EnvironmentInfo) -> dict[str, Any]:
    """What a report shows about an environment before and after a move."""
    return {
        "name": env.display_name,
        "geo": env.location,
        "sku": env.sku,
        "key_managed_by": env.key_managed_by,
        "policy": env.cmk.policy_arm_id if env.cmk else "",
        "system_id": env.cmk.system_id if env.cmk else "",
    }


def after_facts(env: EnvironmentInfo) -> dict[str, str]:
    """A row's after-state, as the service shows the environment."""
    return {
        "key_managed_by_after": env.key_managed_by or "",
        "policy_after": (env.cmk.policy_arm_id or "") if env.cmk else "",
    }


def read_back(row: EnvironmentRow, env: EnvironmentInfo) -> EnvironmentRow:
    """The row with its after-state as the service shows env now."""
    return replace(row, **after_facts(env), read_back=True)


def must_finish(progress: dict[str, Any]) -> bool:
    """Whether a checkpointed environment has work that must be carried on even after a halt.

    An operation in flight is followed to its end, and an environment unlinked by an unlink-then-link is
    linked again; a fan-out that halted new starts still hands these to the mover.
    """
    status = progress.get("status")
    return (status == "in-flight" and bool(progress.get("operation"))) or (
        bool(progress.get("unlinked")) and status != "succeeded"
    )


def policy_label(arm_id: str) -> str:
    """A policy's name from its ARM id (the id itself when it has no slash)."""
    return arm_id.rstrip("/").rsplit("/", 1)[-1] if arm_id else ""
