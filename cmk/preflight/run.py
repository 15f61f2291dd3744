"""Gather the state through the services and run every check: the gate before any mutation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cmk.domain.models import EnvironmentInfo, KeyInfo, PolicyInfo, VaultInfo
from cmk.errors import CmkError, NotFoundError
from cmk.preflight.environment import check_environment
from cmk.preflight.findings import Finding, blocking, findings_to_json, render_findings_table
from cmk.preflight.identity import check_identity_permissions
from cmk.preflight.key import check_key
from cmk.preflight.policy import check_policy
from cmk.preflight.reader import check_reader_grant
from cmk.preflight.vault import check_vault

if TYPE_CHECKING:
    from cmk.clients.arm import ArmService
    from cmk.clients.keyvault import KeyVaultService
    from cmk.clients.powerplatform import PowerPlatformService

BULK_THRESHOLD = 3  # above this many environments, one list call beats one GET each


@dataclass
class PreflightReport:
    """Findings plus the state they were computed from."""

    findings: list[Finding] = field(default_factory=list)
    vault: VaultInfo | None = None
    key: KeyInfo | None = None
    policy: PolicyInfo | None = None
    environments: dict[str, EnvironmentInfo | None] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no finding is blocking."""
        return not blocking(self.findings)

    def codes(self) -> list[str]:
        """The finding codes, in order."""
        return [f.code for f in self.findings]

    def table(self) -> str:
        """The findings as a markdown table."""
        return render_findings_table(self.findings)

    def to_json(self) -> str:
        """The findings as JSON."""
        return findings_to_json(self.findings)


def _unreadable(code: str, target: str, exc: CmkError) -> Finding:
    return Finding(
        code, "blocking", target, f"Could not read it: {exc.message}", "Fix the access problem and re-run."
    )


def _read(fetch: Any, code: str, target: str, report: PreflightReport) -> Any:
    """fetch(), None when it does not exist; an unreadable-finding on any other service error."""
    try:
        return fetch()
    except NotFoundError:
        return None
    except CmkError as exc:
        report.findings.append(_unreadable(code, target, exc))
        return False


def run_preflight(
    keyvault: KeyVaultService,
    arm: ArmService,
    powerplatform: PowerPlatformService | None = None,
    *,
    vault_id: str,
    key_name: str | None = None,
    key_version: str | None = None,
    policy_id: str | None = None,
    env_ids: Sequence[str] = (),
    admin_object_id: str | None = None,
    now: datetime | None = None,
    expiry_margin_days: int = 30,
) -> PreflightReport:
    """Every check that applies: policy_id adds the policy checks, env_ids the environment checks."""
    report = PreflightReport()
    vault = _read(lambda: keyvault.get_vault(vault_id), "VAULT_UNREADABLE", vault_id, report)
    if vault is not False:
        report.vault = vault
        report.findings += check_vault(vault, vault_id)

    policy: PolicyInfo | None = None
    if policy_id:
        found = _read(lambda: arm.get_policy(policy_id), "POLICY_UNREADABLE", policy_id, report)
        if found is not False:
            policy = found
            report.policy = policy
            report.findings += check_policy(policy, report.vault, policy_id)
            if policy and key_name and (policy.key_name or "").lower() != key_name.lower():
                report.findings.append(
                    Finding(
                        "POLICY_KEY_MISMATCH",
                        "blocking",
                        policy.id,
                        f"The policy references key {policy.key_name}, not {key_name}.",
                        "Use the policy's key, or redeploy the policy for this key.",
                    )
                )

    # The key the policy really uses wins over the requested one.
    name = (policy.key_name if policy else None) or key_name
    version = (policy.key_version if policy else None) or key_version
    if report.vault and name:
        key_ref = f"{report.vault.uri}/keys/{name}" + (f"/{version}" if version else "")
        key = _read(
            lambda: keyvault.get_key(report.vault.uri, name, version), "KEY_UNREADABLE", key_ref, report
        )
        if key is not False:
            report.key = key
            report.findings += check_key(key, now, expiry_margin_days, key_ref)

    if report.vault and policy and policy.principal_id:
        assignments = []
        if report.vault.rbac:
            assignments = arm.list_role_assignments(report.vault.id, policy.principal_id)
        report.findings += check_identity_permissions(report.vault, policy, assignments)

    if policy is not None:
        admin = admin_object_id or (powerplatform.settings.admin_object_id if powerplatform else None)
        grants = arm.list_role_assignments(policy.id, admin) if admin else []
        report.findings += check_reader_grant(grants, admin, policy.id)

    if env_ids:
        if powerplatform is None:
            raise ValueError("run_preflight needs a PowerPlatformService to check environments.")
        if len(env_ids) > BULK_THRESHOLD:
            known = {e.id.lower(): e for e in powerplatform.list_environments()}
            envs = {env_id: known.get(env_id.lower()) for env_id in env_ids}
        else:
            envs = {}
            for env_id in env_ids:
                found = _read(
                    lambda e=env_id: powerplatform.get_environment(e), "ENV_UNREADABLE", env_id, report
                )
                envs[env_id] = None if found is False else found
        report.environments = envs
        for env_id, env in envs.items():
            report.findings += check_environment(env, policy, env_id)
    return report
