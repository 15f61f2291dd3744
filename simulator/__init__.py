"""Azure in a box: a local HTTPS simulator of ARM, Key Vault and the Power Platform admin API."""

from simulator.server import SimulatorServer

__all__ = ["SimulatorServer"]
