"""The ASGI app: picks the service by port and path, authenticates, applies faults, runs the handler."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

import anyio

from simulator.core.errors import SimError
from simulator.core.identities import AUDIENCE_ARM, AUDIENCE_KEYVAULT, AUDIENCE_POWERAPPS, Identity
from simulator.core.routing import Router, SimRequest, SimResponse
from simulator.core.tenant import Tenant

_AUDIENCE = {"arm": AUDIENCE_ARM, "keyvault": AUDIENCE_KEYVAULT, "bap": AUDIENCE_POWERAPPS}


class SimulatorApp:
    """One ASGI callable serving ARM, Key Vault vaults, BAP, the token endpoint and /_sim/."""

    def __init__(self, world: Tenant, routers: dict[str, Router]) -> None:
        self.world = world
        self.routers = routers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.request":
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            elif message["type"] == "http.disconnect":
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        server = scope.get("server") or (self.world.host, 0)
        port = int(server[1])
        method = scope["method"]
        path = scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        delay, response = await anyio.to_thread.run_sync(
            self.handle, method, path, query, headers, body, port
        )
        if delay:
            await anyio.sleep(delay)
        payload = (
            b"" if response.body is None or response.status == 204 else json.dumps(response.body).encode()
        )
        out_headers = [(b"content-length", str(len(payload)).encode())]
        if payload:
            out_headers.append((b"content-type", b"application/json; charset=utf-8"))
        for name, value in response.headers.items():
            out_headers.append((name.lower().encode("latin-1"), str(value).encode("latin-1")))
        await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
        await send({"type": "http.response.body", "body": payload})

    # -- synchronous core ---------------------------------------------------------------
    def service_for(self, port: int, path: str) -> str:
        """Which simulated service a request on this port and path is for."""
        if self.world.vault_name_for_port(port) is not None or port in self.world.vault_ports:
            return "keyvault"
        if port == self.world.ports.get("bap"):
            return "bap"
        if path.startswith("/_sim"):
            return "control"
        if path.rstrip("/") == "/msi/token":
            return "identity"
        return "arm"

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes, port: int
    ) -> tuple[float, SimResponse]:
        """Answer one request; returns (seconds to delay the answer, response)."""
        started = time.perf_counter()
        world = self.world
        service = self.service_for(port, path)
        base_url = "https://" + headers.get("host", f"{world.host}:{port}")
        operation = f"{service}.unrouted"
        caller: Identity | None = None
        fault_id: str | None = None
        delay = 0.0
        req: SimRequest | None = None
        try:
            if service == "keyvault" and world.vault_name_for_port(port) is None:
                raise SimError(
                    404, "VaultNotFound", "No vault is served on this endpoint (it was deleted or purged)."
                )
            caller = self.authenticate(service, headers)
            route, params = self.routers[service].match(method, path)
            operation = route.operation
            if caller is not None:
                self.check_rate(service, caller)
            fault = world.faults.pick(service, operation, method, path)
            if fault is not None:
                fault_id = fault.id
                delay = fault.delay_ms / 1000.0
                if not fault.delay_only:
                    raise fault.as_error()
            req = SimRequest(
                world=world,
                service=service,
                operation=operation,
                method=method,
                path=path,
                query=query,
                headers=headers,
                body=body,
                base_url=base_url,
                params=params,
                caller=caller,
                vault_name=world.vault_name_for_port(port) if service == "keyvault" else None,
            )
            with world.lock:
                world.tick()
                result = route.handler(req)
            response = result if isinstance(result, SimResponse) else SimResponse(200, result)
        except SimError as err:
            response = SimResponse(err.status, err.body(), dict(err.headers))
        except Exception as exc:  # a simulator bug must still answer in the envelope
            response = SimResponse(
                500, {"error": {"code": "InternalServerError", "message": f"Simulator error: {exc!r}"}}
            )
        if service != "control":
            world.requests.record(
                time=world.now(),
                service=service,
                operation=operation,
                method=method,
                path=path,
                status=response.status,
                caller=caller.name if caller else None,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                fault=fault_id,
                target=req.log_target if req else None,
            )
        return delay, response

    def authenticate(self, service: str, headers: dict[str, str]) -> Identity | None:
        """The caller of an ARM, Key Vault or BAP request; a 401 in the service's own shape otherwise."""
        world = self.world
        if service == "control":
            return None
        if service == "identity":
            if headers.get("x-identity-header") != world.identity_header:
                raise SimError(401, "Unauthorized", "The X-IDENTITY-HEADER header is missing or wrong.")
            return None
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            if service == "keyvault":
                raise self.keyvault_challenge("AKV10000: Request is missing a Bearer or PoP token.")
            raise SimError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        claims = world.tokens.verify(auth[7:].strip(), time.time())
        if claims is None:
            if service == "keyvault":
                raise self.keyvault_challenge("AKV10022: Invalid audience or expired token.")
            raise SimError(401, "InvalidAuthenticationToken", "The access token is invalid or has expired.")
        if claims.audience != _AUDIENCE[service]:
            if service == "keyvault":
                raise self.keyvault_challenge(f"AKV10022: Invalid audience. Expected {_AUDIENCE[service]}.")
            raise SimError(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for the wrong audience or resource '{claims.audience}'. "
                f"It should exactly match '{_AUDIENCE[service]}'.",
            )
        caller = world.identities.by_object_id(claims.object_id)
        if caller is None:
            raise SimError(401, "InvalidAuthenticationToken", "The principal of this token no longer exists.")
        return caller

    def keyvault_challenge(self, message: str) -> SimError:
        """A Key Vault 401 with the bearer challenge the SDK expects."""
        challenge = (
            f'Bearer authorization="https://login.microsoftonline.com/{self.world.tenant_id}", '
            f'resource="{AUDIENCE_KEYVAULT}"'
        )
        return SimError(401, "Unauthorized", message, headers={"WWW-Authenticate": challenge})

    def check_rate(self, service: str, caller: Identity) -> None:
        """A 429 with Retry-After when the caller's bucket for this service is empty."""
        settings = self.world.settings
        if service == "bap":
            rate, burst = settings.bap_rate_per_second, settings.bap_rate_burst
        elif service == "arm":
            rate, burst = settings.arm_rate_per_second, settings.arm_rate_burst
        else:
            return
        if rate <= 0:
            return
        wait = self.world.rate.take(service, caller.object_id, rate, burst, time.time())
        if wait is not None:
            raise SimError(
                429,
                "TooManyRequests",
                f"Rate limit exceeded for caller {caller.name}: {rate:g} requests per second. "
                f"Retry after {int(wait)} seconds.",
                headers={"Retry-After": str(int(wait))},
            )
