"""Timestamps as ARM writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(timestamp: float) -> str:
    """ISO-8601 UTC as ARM writes it."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
