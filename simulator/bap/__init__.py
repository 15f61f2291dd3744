"""Simulated Power Platform admin API (BAP): environments, link/unlink, lifecycle operations."""
