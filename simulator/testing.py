"""Run the simulator in-process for tests and the demo."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from simulator.control.client import SimControl
from simulator.server import SimulatorServer


class RunningSimulator:
    """A started simulator: its endpoints, its world (in-process) and a control-plane client."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self.endpoints: dict[str, Any] = server.endpoints
        self.control = SimControl(self.endpoints["control"], self.endpoints["ca_bundle"])

    @property
    def world(self) -> Any:
        """The in-process state (for white-box assertions)."""
        return self.server.world

    @property
    def ca_bundle(self) -> str:
        """Path of the CA certificate to pass as connection_verify / verify."""
        return self.endpoints["ca_bundle"]

    def identity(self, name: str) -> dict[str, str]:
        """client_id and object_id of a scenario identity."""
        return self.endpoints["identities"][name]


@contextmanager
def running_simulator(scenario: str | dict[str, Any] = "demo", **kwargs: Any) -> Iterator[RunningSimulator]:
    """Start a simulator on free loopback ports; stop it on exit."""
    server = SimulatorServer(scenario, **kwargs)
    server.start()
    sim = RunningSimulator(server)
    try:
        yield sim
    finally:
        sim.control.close()
        server.stop()
