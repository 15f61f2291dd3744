"""Shared fixtures: one simulator per test session (demo scenario), reset on demand."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from simulator.testing import RunningSimulator, running_simulator

# CI machines may export trust-store variables; every client here passes the simulator's CA explicitly.
for _var in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"):
    os.environ.pop(_var, None)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def sim() -> Iterator[RunningSimulator]:
    """A running simulator with the demo scenario, shared by the session."""
    with running_simulator("demo") as running:
        yield running


@pytest.fixture
def fresh_sim(sim: RunningSimulator) -> RunningSimulator:
    """The shared simulator reset to the scenario's initial state."""
    sim.control.reset()
    return sim
