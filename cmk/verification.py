"""What an environment must look like after a link or an unlink; pure checks over EnvironmentInfo."""

from __future__ import annotations

from cmk.models import EnvironmentInfo

MICROSOFT = "microsoft"


def link_problems(env: EnvironmentInfo, system_id: str) -> list[str]:
    """Why env is not (yet) encrypted with the policy whose systemId is given; empty when it is."""
    problems = []
    if env.cmk is None:
        problems.append("no customer-managed key policy is linked")
    else:
        if (env.cmk.system_id or "").lower() != system_id.lower():
            problems.append(f"linked to another policy ({env.cmk.system_id})")
        if (env.cmk.status or "").lower() != "linked":
            problems.append(f"link status is {env.cmk.status}, not Linked")
    if (env.runtime_state or "").lower() != "enabled":
        problems.append(f"runtime state is {env.runtime_state}, not Enabled")
    if (env.key_managed_by or "").lower() == MICROSOFT:
        problems.append("key is still managed by Microsoft")
    return problems


def unlink_problems(env: EnvironmentInfo) -> list[str]:
    """Why env is not back on the Microsoft-managed key; empty when it is."""
    problems = []
    if env.cmk is not None:
        problems.append(f"still linked to {env.cmk.system_id} ({env.cmk.status})")
    if (env.key_managed_by or "").lower() != MICROSOFT:
        problems.append(f"key managed by {env.key_managed_by}, not Microsoft")
    if (env.runtime_state or "").lower() != "enabled":
        problems.append(f"runtime state is {env.runtime_state}, not Enabled")
    return problems
