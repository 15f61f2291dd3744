"""Run the simulator: bind loopback sockets, serve HTTPS with uvicorn in a thread, publish endpoints."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from simulator.arm.routes import router as arm_router
from simulator.bap.routes import router as bap_router
from simulator.control.routes import router as control_router
from simulator.core.app import SimulatorApp
from simulator.core.routing import Router
from simulator.core.tls import mint_tls
from simulator.identity.routes import router as identity_router
from simulator.keyvault.routes import router as keyvault_router
from simulator.scenarios import load_scenario
from simulator.world import World


def build_routers() -> dict[str, Router]:
    """Every service's router, by service name."""
    return {
        "arm": arm_router,
        "keyvault": keyvault_router,
        "bap": bap_router,
        "control": control_router,
        "identity": identity_router,
    }


def ensure_loopback(host: str) -> None:
    """Refuse any address that is not loopback: the simulator never listens on a network."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"The simulator binds only to loopback addresses (127.0.0.0/8, ::1); got '{host}'.")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


class SimulatorServer:
    """The simulator as a server, usable as a context manager or started from the command line."""

    def __init__(
        self,
        scenario: str | dict[str, Any] = "demo",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
        vault_ports: int = 16,
    ) -> None:
        ensure_loopback(host)
        self.host = host
        self.port = port
        self.vault_port_count = vault_ports
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cmk-sim-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir)
        self.scenario = load_scenario(scenario)
        self.world: World | None = None
        self.endpoints: dict[str, Any] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> dict[str, Any]:
        """Start serving; returns the endpoints (also written to state_dir/endpoints.json)."""
        tls = mint_tls(self.state_dir, self.host)
        main = bind(self.host, self.port)
        bap = bind(self.host, 0)
        vaults = [bind(self.host, 0) for _ in range(self.vault_port_count)]
        ports = [s.getsockname()[1] for s in (main, bap, *vaults)]
        world = World(
            self.scenario, host=self.host, ports={"arm": ports[0], "bap": ports[1]}, vault_ports=ports[2:]
        )
        self.world = world
        config = uvicorn.Config(
            SimulatorApp(world, build_routers()),
            ssl_certfile=str(tls.cert),
            ssl_keyfile=str(tls.key),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        sockets = [main, bap, *vaults]
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=sockets)), name="cmk-simulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The simulator did not start; see the log above.")
            time.sleep(0.01)
        base = f"https://{self.host}:{ports[0]}"
        self.endpoints = {
            "arm": base,
            "bap": f"https://{self.host}:{ports[1]}",
            "token": f"{base}/msi/token",
            "control": f"{base}/_sim",
            "ca_bundle": str(tls.ca_bundle),
            "tenant_id": world.tenant_id,
            "subscription_id": world.subscription_id,
            "identity_header": world.identity_header,
            "identities": {
                i.name: {"client_id": i.client_id, "object_id": i.object_id} for i in world.identities.all()
            },
            "scenario": self.scenario.get("name", "custom"),
        }
        (self.state_dir / "endpoints.json").write_text(json.dumps(self.endpoints, indent=2))
        return self.endpoints

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None:
            # Clients that keep TLS connections alive make uvicorn log "graceful shutdown exceeded" at ERROR
            # level after timeout_graceful_shutdown; that is expected on stop, not an error.
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
