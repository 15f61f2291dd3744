"""Simulated Azure Resource Manager: groups, providers, features, vaults, RBAC, deployments, policies."""
