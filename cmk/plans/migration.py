"""BYOK -> CMK migration and revert to the Microsoft-managed key: who is a target, what blocks, how long to keep keys."""

from __future__ import annotations

from datetime import datetime, timedelta

from cmk.domain.models import EnvironmentInfo, PolicyInfo, environments_using
from cmk.domain.rows import EnvironmentRow
from cmk.plans.change import ChangePlan, environment_writes
from cmk.preflight import Finding, find_requested, same_geo, sort_findings

# DOC25: "the BYOK key in the Microsoft key vault is retained for at least 28 days".
BYOK_RETENTION_DAYS = 28
# DOC25/DOC23b: after unlinking, keep the key, the vault and the policy's permissions for 30 days.
REVERT_KEEP_KEY_DAYS = 30


def until(start: datetime, days: int) -> str:
    """The date `days` after start, as YYYY-MM-DD."""
    return (start + timedelta(days=days)).date().isoformat()


def choose_byok(
    envs: list[EnvironmentInfo], requested: list[str], policy: PolicyInfo
) -> tuple[list[EnvironmentInfo], list[Finding]]:
    """The requested environments, or every legacy BYOK one in the policy's geo; findings for the rest."""
    findings: list[Finding] = []
    if requested:
        chosen, findings = find_requested(envs, requested)
        for env in chosen:
            if not env.byok and not env.uses_policy(policy.system_id):
                findings.append(
                    Finding(
                        "ENV_NOT_BYOK",
                        "blocking",
                        env.id,
                        f"Environment {env.display_name} is not on a legacy BYOK key "
                        f"(key managed by {env.key_managed_by}).",
                        "Leave it out: use the onboard flow for Microsoft-managed environments, or the "
                        "rotation flow to move a CMK environment to another policy.",
                    )
                )
        return chosen, findings
    chosen = [e for e in envs if e.byok and same_geo(e.location, policy.location)]
    for env in envs:
        if env.byok and not same_geo(env.location, policy.location):
            findings.append(
                Finding(
                    "BYOK_OTHER_GEO",
                    "info",
                    env.id,
                    f"BYOK environment {env.display_name} is in geo {env.location}, not {policy.location}.",
                    f"Migrate it with a CMK policy created in geo {env.location}.",
                )
            )
    if not chosen:
        findings.append(
            Finding(
                "NO_BYOK_ENVIRONMENTS",
                "blocking",
                policy.location,
                f"No environment in geo {policy.location} is on a legacy BYOK key.",
                "Nothing to migrate here; pass environment ids explicitly if you expected some.",
            )
        )
    return chosen, findings


def revert_findings(env: EnvironmentInfo, policy: PolicyInfo | None) -> list[Finding]:
    """Why env cannot be unlinked back to the Microsoft-managed key now (info when it already is)."""
    if env.cmk is None:
        if env.byok:
            return [
                Finding(
                    "ENV_LEGACY_BYOK",
                    "blocking",
                    env.id,
                    f"Environment {env.display_name} uses a legacy BYOK key, not a CMK policy; revert only unlinks "
                    "CMK policies.",
                    "Leave it out of this change.",
                )
            ]
        return [
            Finding(
                "ENV_ALREADY_MICROSOFT",
                "info",
                env.id,
                f"Environment {env.display_name} already uses the Microsoft-managed key.",
                "Nothing to do for this environment.",
            )
        ]
    out: list[Finding] = []
    if policy is not None and not env.uses_policy(policy.system_id):
        out.append(
            Finding(
                "ENV_LINKED_TO_OTHER_POLICY",
                "blocking",
                env.id,
                f"Environment {env.display_name} is linked to {env.cmk.policy_arm_id}, not {policy.name}.",
                "Leave it out, or leave policy_id empty to revert each environment from its own policy.",
            )
        )
    status = (env.cmk.status or "").lower()
    if status in {"linking", "unlinking"}:
        out.append(
            Finding(
                "ENV_OPERATION_RUNNING",
                "blocking",
                env.id,
                f"Environment {env.display_name} has a {env.cmk.status} operation running.",
                "Wait for it to finish, then re-run.",
            )
        )
    elif (env.runtime_state or "").lower() == "disabled":
        out.append(
            Finding(
                "ENV_DISABLED",
                "blocking",
                env.id,
                f"Environment {env.display_name} is disabled ({env.runtime_reason or 'no reason given'}); a locked "
                "environment cannot be unlinked.",
                "Restore key access and re-enable it (unlock flow) first.",
            )
        )
    return out


def revert_targets(
    envs: list[EnvironmentInfo], requested: list[str], policy: PolicyInfo | None, resuming: set[str]
) -> tuple[list[EnvironmentInfo], list[Finding]]:
    """The environments to unlink and the findings about them (resumed ones are only looked up)."""
    if requested:
        chosen, findings = find_requested(envs, requested)
    else:
        chosen = environments_using(envs, policy.system_id) if policy else []
        findings = []
    targets = []
    for env in chosen:
        if env.id.lower() in resuming:
            targets.append(env)
            continue
        env_findings = revert_findings(env, policy)
        findings += env_findings
        if not any(f.code == "ENV_ALREADY_MICROSOFT" for f in env_findings):
            targets.append(env)
    return targets, findings


def plan_moves(
    flow: str,
    action: str,
    change_id: str,
    requested_by: str,
    rows: list[EnvironmentRow],
    findings: list[Finding],
    notes: list[str] | None = None,
) -> ChangePlan:
    """A plan whose only writes move environments: link each (migrate_byok) or unlink each (revert)."""
    return ChangePlan(
        flow,
        change_id,
        requested_by,
        writes=environment_writes(action, rows),
        findings=sort_findings(findings),
        rows=list(rows),
        notes=list(notes or []),
    )


def planned_environments(plan: ChangePlan, action: str) -> list[str]:
    """The environments the plan moves with this action (link or unlink), in plan order."""
    return [w.target for w in plan.pending if w.action == action]
