"""Key access health, derived across ARM and Key Vault: never stored, recomputed whenever asked."""

from __future__ import annotations

from typing import Any

from simulator.core.ports import HealthPeers

# What the policy identity needs on an RBAC vault ("Key Vault Crypto Service Encryption User").
REQUIRED_DATA_ACTIONS = (
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
)
# What it needs in an access-policy vault (PAS/PPEP README: Get, WrapKey, UnwrapKey).
REQUIRED_KEY_PERMISSIONS = ("get", "wrapkey", "unwrapkey")


def policy_key_problems(peers: HealthPeers, policy: Any) -> list[str]:
    """Why the policy's identity cannot get, wrap and unwrap its key now; empty when it can."""
    if policy is None:
        return ["the enterprise policy does not exist"]
    principal = getattr(policy, "principal_id", None)
    if not principal:
        return [f"the enterprise policy '{policy.name}' has no managed identity"]
    vault_id = getattr(policy, "vault_id", None)
    if not vault_id:
        return [f"the enterprise policy '{policy.name}' names no key vault"]
    vault = peers.find_vault_by_id(vault_id)
    if vault is None:
        return [f"the key vault '{vault_id}' does not exist or is soft-deleted"]
    problems: list[str] = []
    network = peers.vault_network_problem(vault.id)
    if network:
        problems.append(network)
    if vault.enable_rbac_authorization:
        missing = [a for a in REQUIRED_DATA_ACTIONS if not peers.has_data_action(principal, vault.id, a)]
        if missing:
            problems.append(
                f"the policy identity '{principal}' lacks {', '.join(missing)} on the key vault "
                f"'{vault.name}' (role 'Key Vault Crypto Service Encryption User')"
            )
    else:
        granted = {p.lower() for p in vault.key_permissions_for(principal)}
        missing = [p for p in REQUIRED_KEY_PERMISSIONS if p not in granted]
        if missing:
            problems.append(
                f"the access policy of the key vault '{vault.name}' does not grant the policy identity "
                f"'{principal}' the key permissions {', '.join(missing)}"
            )
    key_problem = peers.key_problem(vault.name, policy.key_name, policy.key_version, peers.now())
    if key_problem:
        problems.append(key_problem)
    return problems


def policy_health_status(peers: HealthPeers, policy: Any) -> str:
    """Healthy when the identity can use its key, else Unhealthy."""
    return "Healthy" if not policy_key_problems(peers, policy) else "Unhealthy"
