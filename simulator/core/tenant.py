"""What every service shares: the tenant, its identities and settings, time, faults and vault endpoints."""

from __future__ import annotations

import copy
import secrets
import threading
from typing import Any

from simulator.core.clock import Clock
from simulator.core.errors import SimError
from simulator.core.faults import FaultStore
from simulator.core.identities import Identity, IdentityStore, TokenIssuer
from simulator.core.ratelimit import RateLimiter
from simulator.core.reqlog import RequestLog
from simulator.core.settings import SimSettings


class Tenant:
    """The simulated tenant without its services; every handler runs under `lock`."""

    def __init__(
        self,
        scenario: dict[str, Any],
        *,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        vault_ports: list[int] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.host = host
        self.clock = Clock()
        self.tokens = TokenIssuer()
        self.identity_header = secrets.token_urlsafe(24)
        self.faults = FaultStore()
        self.requests = RequestLog()
        self.rate = RateLimiter()
        self.ports: dict[str, int] = dict(ports or {})  # "arm", "bap" -> port
        self.vault_ports: list[int] = list(vault_ports or [])  # pool of ports for vault data planes
        self._vault_by_port: dict[int, str] = {}
        self.scenario = copy.deepcopy(scenario)
        self.load(self.scenario)

    # -- scenario -----------------------------------------------------------------
    def load(self, scenario: dict[str, Any]) -> None:
        """Build the tenant, its settings and identities from a scenario dict (see docs/simulator.md)."""
        with self.lock:
            self.tenant_id: str = scenario["tenant_id"]
            self.subscription_id: str = scenario["subscription_id"]
            self.settings = SimSettings()
            self.settings.update(scenario.get("settings", {}))
            self.identities = IdentityStore()
            for spec in scenario.get("identities", []):
                self.identities.add(
                    Identity(
                        name=spec["name"],
                        object_id=spec["object_id"],
                        client_id=spec["client_id"],
                        kind=spec.get("kind", "ServicePrincipal"),
                        directory_roles=set(spec.get("directory_roles", [])),
                    )
                )
            self.default_identity: str | None = scenario.get("default_identity")
            self._vault_by_port.clear()

    def reset(self) -> None:
        """Rebuild the state from the scenario; faults, request log and rate buckets are cleared too."""
        with self.lock:
            self.faults.clear()
            self.requests.clear()
            self.rate.reset()
            self.clock = Clock()
            self.load(self.scenario)

    def tick(self) -> None:
        """Settle every timed transition that is due; the services' World (simulator/world.py) has them."""

    def now(self) -> float:
        """Simulated Unix time."""
        return self.clock.now()

    # -- identities -----------------------------------------------------------------
    def resolve_principal(self, ref: str) -> Identity | None:
        """An identity by scenario name, object id or client id."""
        return (
            self.identities.by_name(ref)
            or self.identities.by_object_id(ref)
            or self.identities.by_client_id(ref)
        )

    # -- vault endpoints ------------------------------------------------------------
    def allocate_vault_uri(self, vault_name: str) -> str:
        """Give a vault its own https://host:port data-plane endpoint from the port pool."""
        with self.lock:
            key = vault_name.lower()
            for port, name in self._vault_by_port.items():
                if name == key:
                    return f"https://{self.host}:{port}"
            for port in self.vault_ports:
                if port not in self._vault_by_port:
                    self._vault_by_port[port] = key
                    return f"https://{self.host}:{port}"
            if not self.vault_ports:
                # Not serving (models-only tests): a stable placeholder endpoint.
                return f"https://{self.host}:0/{key}"
            raise SimError(
                409,
                "VaultEndpointPoolExhausted",
                f"The simulator has no free vault endpoint for '{vault_name}'; start it with more --vault-ports.",
            )

    def release_vault_uri(self, vault_name: str) -> None:
        """Free a purged vault's endpoint."""
        with self.lock:
            key = vault_name.lower()
            for port, name in list(self._vault_by_port.items()):
                if name == key:
                    del self._vault_by_port[port]

    def vault_name_for_port(self, port: int) -> str | None:
        """The vault (lower-case name) served on this port, if any."""
        return self._vault_by_port.get(port)

    def snapshot(self) -> dict[str, Any]:
        """The tenant's own part of /_sim/state."""
        return {
            "time": self.now(),
            "clock_scale": self.clock.scale,
            "tenant_id": self.tenant_id,
            "subscription_id": self.subscription_id,
            "settings": self.settings.as_dict(),
            "identities": {i.name: i.public() for i in self.identities.all()},
        }
