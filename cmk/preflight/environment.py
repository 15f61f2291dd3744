"""Environment checks: exists, managed, SKU allowed, same geo as the policy, no operation running."""

from __future__ import annotations

from cmk.domain.models import EnvironmentInfo, PolicyInfo
from cmk.domain.resource_ids import same_id
from cmk.preflight.findings import Finding

DISALLOWED_SKUS = frozenset({"trial", "teams"})
# Geo names the service treats as one (PPEP Enable-SubnetInjection compatibility pairs).
_GEO_ALIASES = {"unitedstateseuap": "unitedstates", "unitedkingdom": "uk"}


def normalise_geo(geo: str | None) -> str:
    """A Power Platform geo in canonical form."""
    value = (geo or "").strip().lower()
    return _GEO_ALIASES.get(value, value)


def same_geo(a: str | None, b: str | None) -> bool:
    """Whether two geos match, with unitedstates/unitedstateseuap and uk/unitedkingdom paired."""
    return bool(a and b) and normalise_geo(a) == normalise_geo(b)


def find_requested(
    envs: list[EnvironmentInfo], requested: list[str]
) -> tuple[list[EnvironmentInfo], list[Finding]]:
    """The requested environments found in envs (ids case-insensitive), and an ENV_NOT_FOUND for each other."""
    by_id = {e.id.lower(): e for e in envs}
    chosen: list[EnvironmentInfo] = []
    findings: list[Finding] = []
    for env_id in requested:
        env = by_id.get(env_id.strip().lower())
        if env is None:
            findings += check_environment(None, None, env_id.strip())
        else:
            chosen.append(env)
    return chosen, findings


def check_environment(
    env: EnvironmentInfo | None, policy: PolicyInfo | None = None, env_id: str = ""
) -> list[Finding]:
    """Whether the environment can take this policy's key now."""
    if env is None:
        return [
            Finding(
                "ENV_NOT_FOUND",
                "blocking",
                env_id,
                "The environment does not exist, or the Power Platform identity is not a Power "
                "Platform admin.",
                "Check the environment id and that the identity holds the Power Platform Administrator role.",
            )
        ]
    target = env.id
    out: list[Finding] = []
    if (env.sku or "").lower() in DISALLOWED_SKUS:
        out.append(
            Finding(
                "ENV_SKU_NOT_ALLOWED",
                "blocking",
                target,
                f"Environment {env.display_name} is a {env.sku} environment; Trial and Teams cannot use CMK.",
                "Convert it to Production or Sandbox, or leave it out of this change.",
            )
        )
    if not env.managed:
        out.append(
            Finding(
                "ENV_NOT_MANAGED",
                "blocking",
                target,
                f"Environment {env.display_name} is not a Managed Environment.",
                "Enable Managed Environment on it (enable_managed_environment) and re-run preflight.",
            )
        )
    if policy is not None and not same_geo(env.location, policy.location):
        out.append(
            Finding(
                "ENV_GEO_MISMATCH",
                "blocking",
                target,
                f"Environment {env.display_name} is in geo {env.location}, the policy in {policy.location}.",
                "Use a policy created in the environment's geo.",
            )
        )
    if env.operation_running:
        out.append(
            Finding(
                "ENV_OPERATION_RUNNING",
                "blocking",
                target,
                f"Environment {env.display_name} has a lifecycle operation running (linkStatus "
                f"{env.cmk.status}).",
                "Wait for the running operation to finish, then re-run preflight.",
            )
        )
    elif (env.runtime_state or "").lower() == "disabled":
        out.append(
            Finding(
                "ENV_DISABLED",
                "blocking",
                target,
                f"Environment {env.display_name} is disabled ({env.runtime_reason or 'no reason given'}): "
                "an operation is running or it is locked because its key is unreachable.",
                "Wait for the running operation, or restore key access and re-enable the environment.",
            )
        )
    if env.cmk and (env.cmk.status or "").lower() == "failed":
        out.append(
            Finding(
                "ENV_PREVIOUS_LINK_FAILED",
                "warning",
                target,
                f"The last link of environment {env.display_name} failed; its data stays on the previous key.",
                "Fix the cause (usually key access), then link again: the service resumes where it stopped.",
            )
        )
    if env.cmk and policy is not None and env.cmk.status and env.cmk.status.lower() == "linked":
        if env.cmk.system_id and policy.system_id:
            same_policy = env.cmk.system_id.lower() == policy.system_id.lower()
        else:
            same_policy = same_id(env.cmk.policy_arm_id, policy.id)
        if same_policy:
            out.append(
                Finding(
                    "ENV_ALREADY_LINKED",
                    "info",
                    target,
                    f"Environment {env.display_name} is already linked to this policy.",
                    "Nothing to do for this environment.",
                )
            )
        else:
            out.append(
                Finding(
                    "ENV_LINKED_TO_OTHER_POLICY",
                    "warning",
                    target,
                    f"Environment {env.display_name} is linked to another policy ({env.cmk.policy_arm_id}).",
                    "Linking swaps the policy: keep the old key and its access for at least 30 days.",
                )
            )
    if env.byok:
        out.append(
            Finding(
                "ENV_LEGACY_BYOK",
                "info",
                target,
                f"Environment {env.display_name} uses a legacy BYOK key.",
                "Move it to CMK with the migrate_byok flow; the service keeps the BYOK key for 28 days.",
            )
        )
    return out
