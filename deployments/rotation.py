"""The rotation deployment: quarterly by cron (timezone set), editable parameters, triggerable ad hoc."""

from __future__ import annotations

from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.rotate import rotate

DEPLOYMENT_NAME = "rotate-key"
QUARTERLY = "0 6 1 1,4,7,10 *"  # 06:00 on the first day of each quarter
TIMEZONE = "Europe/Amsterdam"


def rotation_deployment(
    policy_id: str | None = None,
    *,
    mode: str = "key-version",
    cron: str = QUARTERLY,
    timezone: str = TIMEZONE,
    parameters: dict[str, Any] | None = None,
) -> RunnerDeployment:
    """The rotate flow as a deployment; its schedule is active only once a policy_id is set.

    Scheduled runs get change id "rotate-<mode>-<scheduled date>", so a re-run of the same scheduled run
    resumes its change. Every parameter stays editable in the UI ("Run -> Custom run").
    """
    defaults: dict[str, Any] = {"mode": mode, **(parameters or {})}
    if policy_id:
        defaults["policy_id"] = policy_id
    return rotate.to_deployment(
        name=DEPLOYMENT_NAME,
        description=(
            "Rotate a policy's customer-managed key: mode key-version (new key version, no downtime) or "
            "policy-swap (new key and policy, environments moved in waves, canary first). Quarterly, or on "
            "demand. Every run pauses for approval; old keys are retired later by the retire flow."
        ),
        tags=["cmk", "change", "scheduled"],
        schedules=[Cron(cron, timezone=timezone, active=bool(policy_id), slug="quarterly")],
        parameters=defaults,
    )
