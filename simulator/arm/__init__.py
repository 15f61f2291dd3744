"""Simulated Azure Resource Manager: resource groups, providers, features, vaults, RBAC, deployments, policies."""
