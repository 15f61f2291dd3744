"""A small httpx client for /_sim/, used by tests, the demo and benchmarks."""

from __future__ import annotations

import ssl
from typing import Any

import httpx


class SimControl:
    """Drive the simulator's control plane over HTTPS with its own CA."""

    def __init__(self, control_url: str, ca_bundle: str, timeout: float = 30.0) -> None:
        tls = ssl.create_default_context(cafile=ca_bundle)
        self._http = httpx.Client(base_url=control_url.rstrip("/") + "/", verify=tls, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"/_sim/{path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def reset(self) -> None:
        """Rebuild the state from the scenario."""
        self._call("POST", "reset")

    def state(self) -> dict[str, Any]:
        """The whole state."""
        return self._call("GET", "state")

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """Logged requests matching since/service/method/operation/path_contains/limit."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._call("GET", "requests", params=params)["value"]

    def last_seq(self) -> int:
        """The newest request's sequence number (use as since= for later queries)."""
        return self._call("GET", "requests", params={"limit": 1})["last_seq"]

    def add_fault(self, **rule: Any) -> str:
        """Add a fault rule; returns its id."""
        return self._call("POST", "faults", json=rule)["id"]

    def faults(self) -> list[dict[str, Any]]:
        """Every fault rule with its hits."""
        return self._call("GET", "faults")["value"]

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._call("DELETE", "faults")

    def advance(self, seconds: float) -> float:
        """Move simulated time forward; returns the new time."""
        return self._call("POST", "time", json={"advance": seconds})["time"]

    def set_scale(self, scale: float) -> None:
        """Simulated seconds per real second."""
        self._call("POST", "time", json={"scale": scale})

    def now(self) -> float:
        """Simulated time."""
        return self._call("GET", "time")["time"]

    def settings(self, **values: Any) -> dict[str, Any]:
        """Change settings (or read them when none are given)."""
        if values:
            return self._call("PATCH", "settings", json=values)
        return self._call("GET", "settings")

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> SimControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
