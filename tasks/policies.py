"""Enterprise policy tasks: find, read, deploy, wait for identity or health, check, delete."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmk.domain.models import KeyInfo, PolicyInfo
from cmk.domain.resource_ids import policy_id
from cmk.errors import CmkError, OperationTimeoutError
from cmk.plans.lockdown import shares_key
from cmk.preflight import (
    Finding,
    check_identity_permissions,
    check_key,
    check_reader_grant,
    check_vault_network,
)
from cmk.preflight.target import TargetPolicyFacts
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(
    name="read-policies",
    **TRANSIENT_RETRY,
)
def read_policies(services: Services) -> list[PolicyInfo]:
    """Every Encryption enterprise policy of the subscription, read with one paged list."""
    return services.arm.list_policies()


@task(name="read-policy", **TRANSIENT_RETRY)
def read_policy(services: Services, policy_id: str) -> PolicyInfo | None:
    """The enterprise policy with its health, or None when it does not exist."""
    return services.arm.find_policy(policy_id)


@task(name="read-policies-sharing-key", **TRANSIENT_RETRY)
def read_policies_sharing_key(services: Services, policy: PolicyInfo) -> list[PolicyInfo]:
    """The policy and every other Encryption policy of the subscription that uses the same key."""
    others = [
        p for p in services.arm.list_policies() if p.id.lower() != policy.id.lower() and shares_key(policy, p)
    ]
    return [policy, *others]


@task(name="wait-policy-health", cache_policy=NO_CACHE)
def wait_policy_health(
    services: Services, policy_id: str, want: str, timeout_seconds: float, poll_seconds: float = 1.0
) -> PolicyInfo:
    """Re-read the policy until its healthStatus is `want`; OperationTimeoutError past the deadline."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        policy = services.arm.get_policy(policy_id)
        if (policy.health or "").lower() == want.lower():
            return policy
        if time.monotonic() > deadline:
            raise OperationTimeoutError(
                f"Enterprise policy {policy.name} is still {policy.health} after {timeout_seconds:g} s, not {want}. "
                "Re-read it later; run the flow again with the same change id to continue.",
                target=policy_id,
            )
        time.sleep(poll_seconds)


@task(name="find-policy", **TRANSIENT_RETRY)
def find_policy(services: Services, resource_group: str, policy_name: str) -> tuple[str, PolicyInfo | None]:
    """The ARM id the policy has (or will have) in the connection's subscription, and the policy if it exists."""
    target = policy_id(services.arm.settings.subscription_id, resource_group, policy_name)
    return target, services.arm.find_policy(target)


@task(name="deploy-policy", **TRANSIENT_RETRY)
def deploy_policy(
    services: Services, resource_group: str, policy_name: str, location: str, vault_id: str, key_name: str
) -> PolicyInfo:
    """Create the Encryption enterprise policy by template deployment (version-less key: follows rotation)."""
    policy = services.arm.deploy_enterprise_policy(resource_group, policy_name, location, vault_id, key_name)
    get_run_logger().info("Policy %s has systemId %s.", policy.name, policy.system_id)
    return policy


@task(name="wait-policy-identity", **TRANSIENT_RETRY)
def wait_policy_identity(services: Services, policy_id: str, timeout_seconds: float = 600) -> PolicyInfo:
    """Wait until the policy's managed identity is visible."""
    return services.arm.wait_for_policy_identity(policy_id, timeout=timeout_seconds, poll=2)


@task(name="read-target-policy", **TRANSIENT_RETRY)
def read_target_policy(services: Services, policy_id: str) -> TargetPolicyFacts:
    """Read the policy, its vault, key and grants, for the rules of a policy environments move onto (GET only)."""
    policy = services.arm.find_policy(policy_id)
    if policy is None:
        return TargetPolicyFacts(policy_id, None)
    vault, vault_error, key, key_assignments = None, None, None, []
    if policy.vault_id:
        try:
            vault = services.keyvault.get_vault(policy.vault_id)
        except CmkError as exc:
            vault_error = exc.message
    if vault is not None:
        key_assignments = (
            services.arm.list_role_assignments(vault.id, policy.principal_id) if vault.rbac else []
        )
        if policy.key_name:
            try:
                key = services.keyvault.get_key(vault.uri, policy.key_name, policy.key_version or None)
            except CmkError:
                key = None
    admin = services.admin_object_id
    readers = services.arm.list_role_assignments(policy.id, admin) if admin else []
    return TargetPolicyFacts(
        policy_id, policy, vault, vault_error, key, tuple(key_assignments), admin, tuple(readers)
    )


@task(name="verify-policy-key-access", **TRANSIENT_RETRY)
def verify_policy_key_access(
    services: Services, vault_id: str, policy: PolicyInfo, key: KeyInfo, admin_object_id: str | None = None
) -> list[Finding]:
    """Re-read the vault and grants: the policy identity must be able to get, wrap and unwrap the key.

    The Reader grant is checked for admin_object_id (default: the connection block's admin).
    """
    admin = admin_object_id or services.admin_object_id
    vault = services.keyvault.get_vault(vault_id)
    assignments = services.arm.list_role_assignments(vault.id, policy.principal_id) if vault.rbac else []
    findings = check_identity_permissions(vault, policy, assignments)
    findings += check_vault_network(vault)
    findings += check_key(services.keyvault.get_key(vault.uri, key.name))
    if admin:
        findings += check_reader_grant(services.arm.list_role_assignments(policy.id, admin), admin, policy.id)
    return findings


@task(name="delete-enterprise-policy", cache_policy=NO_CACHE)
def delete_enterprise_policy(services: Services, policy_id: str) -> bool:
    """Delete the old enterprise policy; False when it was already gone."""
    deleted = services.arm.delete_enterprise_policy(policy_id)
    get_run_logger().info(
        "Policy %s %s.", policy_id.rsplit("/", 1)[-1], "deleted" if deleted else "was already gone"
    )
    return deleted
