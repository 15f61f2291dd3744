"""Prefect flows: one procedure per module (no HTTP here; services come from cmk/ through blocks)."""
