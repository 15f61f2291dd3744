"""A small regex router: literal routes first, case-insensitive matching where ARM needs it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.core.errors import SimError

if TYPE_CHECKING:
    from simulator.core.identities import Identity


@dataclass
class SimResponse:
    """What a handler answers: a status, an optional JSON body and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SimRequest:
    """One request as a handler sees it, already authenticated."""

    world: Any  # the composed simulator.world.World; core knows only its Tenant part
    service: str
    operation: str
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    base_url: str
    params: dict[str, str]
    caller: Identity | None = None
    vault_name: str | None = None
    log_target: str | None = None  # a handler may name what it acted on, for /_sim/requests

    def q(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, matched case-insensitively."""
        lowered = name.lower()
        for key, value in self.query.items():
            if key.lower() == lowered:
                return value
        return default

    def json(self, *, required: bool = True) -> Any:
        """The body parsed as JSON; a 400 with the ARM envelope when it is not JSON."""
        if not self.body:
            if required:
                raise SimError(400, "InvalidRequestContent", "The request content was empty or missing.")
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise SimError(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be parsed: {exc}",
            ) from exc

    def url(self, path: str) -> str:
        """An absolute URL on the host the request came to."""
        return self.base_url + path


Handler = Callable[[SimRequest], "SimResponse | dict[str, Any] | None"]


@dataclass
class Route:
    """A method and path pattern bound to a handler and an operation name."""

    method: str
    regex: re.Pattern[str]
    handler: Handler
    operation: str
    pattern: str


_PARAM = re.compile(r"\{(\w+)(:path)?\}")


def compile_pattern(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """Turn '/a/{x}/b/{rest:path}' into an anchored regex with named groups."""
    out = []
    pos = 0
    for match in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos : match.start()]))
        name, is_path = match.group(1), match.group(2)
        out.append(f"(?P<{name}>.+)" if is_path else f"(?P<{name}>[^/]+)")
        pos = match.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE if ignore_case else 0)


class Router:
    """Routes of one service, tried in registration order."""

    def __init__(self, service: str, *, ignore_case: bool = True) -> None:
        self.service = service
        self.ignore_case = ignore_case
        self.routes: list[Route] = []

    def route(self, method: str, pattern: str, operation: str) -> Callable[[Handler], Handler]:
        """Decorator registering a handler for method and pattern."""

        def register(handler: Handler) -> Handler:
            self.add(method, pattern, operation, handler)
            return handler

        return register

    def add(self, method: str, pattern: str, operation: str, handler: Handler) -> None:
        """Register a handler for method and pattern."""
        regex = compile_pattern(pattern, ignore_case=self.ignore_case)
        self.routes.append(Route(method.upper(), regex, handler, operation, pattern))

    def include(self, other: Router) -> None:
        """Append another router's routes to this one."""
        self.routes.extend(other.routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for method and path, or a 404/405 SimError in the real envelope."""
        allowed = False
        for route in self.routes:
            found = route.regex.match(path)
            if not found:
                continue
            if route.method == method.upper():
                return route, found.groupdict()
            allowed = True
        if allowed:
            raise SimError(
                405,
                "MethodNotAllowed",
                f"The requested method {method} is not allowed for the resource {path}.",
            )
        raise SimError(
            404, "NotFound", f"No route is registered for {method} {path} in the simulated {self.service}."
        )
