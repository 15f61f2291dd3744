"""Onboarding tasks: read what exists (GET only), then the writes: provider, key, policy and grants."""

from __future__ import annotations

from prefect import get_run_logger, task

from cmk.errors import NotFoundError
from cmk.models import KeyInfo, PolicyInfo, RoleAssignmentInfo, VaultInfo
from cmk.resource_ids import policy_id
from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY

CRYPTO_SERVICE_ENCRYPTION_USER = "Key Vault Crypto Service Encryption User"
READER = "Reader"


@task(name="read-vault", **TRANSIENT_RETRY)
def read_vault(services: Services, vault_id: str) -> VaultInfo:
    """The vault's protection settings and access model."""
    return services.keyvault.get_vault(vault_id)


@task(name="find-vault", **TRANSIENT_RETRY)
def find_vault(services: Services, vault_id: str) -> VaultInfo | None:
    """The vault, or None when it does not exist."""
    try:
        return services.keyvault.get_vault(vault_id)
    except NotFoundError:
        return None


@task(name="find-key", **TRANSIENT_RETRY)
def find_key(services: Services, vault_uri: str, key_name: str) -> KeyInfo | None:
    """The key's latest version, or None when the key does not exist."""
    try:
        return services.keyvault.get_key(vault_uri, key_name)
    except NotFoundError:
        return None


@task(name="find-policy", **TRANSIENT_RETRY)
def find_policy(services: Services, resource_group: str, policy_name: str) -> tuple[str, PolicyInfo | None]:
    """The ARM id the policy has (or will have) in the connection's subscription, and the policy if it exists."""
    target = policy_id(services.arm.settings.subscription_id, resource_group, policy_name)
    return target, services.arm.find_policy(target)


@task(name="read-provider-state", **TRANSIENT_RETRY)
def read_provider_state(services: Services, namespace: str = "Microsoft.PowerPlatform") -> str:
    """The resource provider's registration state on the subscription (Registered, NotRegistered, ...)."""
    return services.arm.provider_state(namespace)


@task(name="read-reader-grants", **TRANSIENT_RETRY)
def read_reader_grants(
    services: Services, policy: PolicyInfo | None, admin_object_id: str
) -> list[RoleAssignmentInfo]:
    """The admin's role assignments that apply to the policy."""
    if policy is None or not admin_object_id:
        return []
    return services.arm.list_role_assignments(policy.id, admin_object_id)


@task(name="register-provider", **TRANSIENT_RETRY)
def register_provider(services: Services, timeout_seconds: float = 600) -> str:
    """Register Microsoft.PowerPlatform on the subscription and wait until it is Registered."""
    state = services.arm.ensure_provider_registered(
        "Microsoft.PowerPlatform", timeout=timeout_seconds, poll=2
    )
    get_run_logger().info("Microsoft.PowerPlatform is %s.", state)
    return state


@task(name="ensure-key", **TRANSIENT_RETRY)
def ensure_key(services: Services, vault_uri: str, key_name: str, key_type: str, key_size: int) -> KeyInfo:
    """Create the key, or adopt an existing one of the right type and size."""
    key, created = services.keyvault.ensure_key(vault_uri, key_name, kty=key_type, size=key_size)
    get_run_logger().info(
        "Key %s %s (version %s).", key_name, "created" if created else "adopted", key.version
    )
    return key


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


@task(name="grant-key-access", **TRANSIENT_RETRY)
def grant_key_access(services: Services, vault: VaultInfo, policy: PolicyInfo) -> str:
    """Give the policy identity get/wrapKey/unwrapKey: an access-policy entry or the RBAC role, by vault mode."""
    if vault.rbac:
        _, created = services.arm.ensure_role_assignment(
            vault.id, policy.principal_id, CRYPTO_SERVICE_ENCRYPTION_USER
        )
        how = "role Key Vault Crypto Service Encryption User"
    else:
        created = services.keyvault.ensure_access_policy(vault.id, policy.principal_id)
        how = "access policy get/wrapKey/unwrapKey"
    get_run_logger().info(
        "Key access for the policy identity: %s (%s).", how, "granted" if created else "present"
    )
    return how


@task(name="grant-policy-reader", **TRANSIENT_RETRY)
def grant_policy_reader(services: Services, policy: PolicyInfo, admin_object_id: str) -> bool:
    """Give the Power Platform administrator Reader on the policy (needed to link environments)."""
    _, created = services.arm.ensure_role_assignment(policy.id, admin_object_id, READER)
    return created
