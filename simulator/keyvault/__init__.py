"""Simulated Key Vault data plane: keys, versions, soft delete, rotation, wrap/unwrap."""
