"""Principals of the simulated tenant and the bearer tokens issued to them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

# Audiences the simulator issues tokens for, by the resource a credential asks for.
AUDIENCE_ARM = "https://management.azure.com"
AUDIENCE_KEYVAULT = "https://vault.azure.net"
AUDIENCE_POWERAPPS = "https://service.powerapps.com"
_AUDIENCE_ALIASES = {
    "https://management.azure.com": AUDIENCE_ARM,
    "https://management.core.windows.net": AUDIENCE_ARM,
    "https://vault.azure.net": AUDIENCE_KEYVAULT,
    "https://service.powerapps.com": AUDIENCE_POWERAPPS,
    "https://api.bap.microsoft.com": AUDIENCE_POWERAPPS,
}


def normalise_audience(resource: str) -> str | None:
    """Map a requested resource or scope to a known audience, or None."""
    value = resource.strip()
    if value.endswith("/.default"):
        value = value[: -len("/.default")]
    return _AUDIENCE_ALIASES.get(value.rstrip("/"))


@dataclass
class Identity:
    """A principal: a user, service principal or managed identity."""

    name: str
    object_id: str
    client_id: str
    kind: str = "ServicePrincipal"  # User | ServicePrincipal | ManagedIdentity
    directory_roles: set[str] = field(default_factory=set)  # e.g. {"PowerPlatformAdministrator"}
    can_sign_in: bool = True  # policy identities exist as principals but get no tokens from us

    @property
    def is_power_platform_admin(self) -> bool:
        """Whether the principal holds a Power Platform administrator directory role."""
        return bool({"PowerPlatformAdministrator", "Dynamics365Administrator"} & self.directory_roles)

    def public(self) -> dict[str, object]:
        """The identity as shown in endpoints.json and /_sim/state."""
        return {
            "client_id": self.client_id,
            "object_id": self.object_id,
            "kind": self.kind,
            "directory_roles": sorted(self.directory_roles),
        }


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    object_id: str
    audience: str
    expires_on: int


class TokenIssuer:
    """Issues self-contained HMAC-signed tokens so they survive a state reset."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def issue(self, identity: Identity, audience: str, expires_on: int) -> str:
        """A bearer token for identity and audience."""
        payload = json.dumps({"oid": identity.object_id, "aud": audience, "exp": expires_on}).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        sig = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:32]
        return f"sim.{body}.{sig}"

    def verify(self, token: str, now: float) -> TokenClaims | None:
        """The claims of a valid, unexpired token, else None."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "sim":
            return None
        body, sig = parts[1], parts[2]
        expected = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(sig, expected):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        if data.get("exp", 0) <= now:
            return None
        return TokenClaims(object_id=data["oid"], audience=data["aud"], expires_on=int(data["exp"]))


class IdentityStore:
    """All principals of the tenant, looked up by name, object id or client id."""

    def __init__(self) -> None:
        self._by_oid: dict[str, Identity] = {}

    def add(self, identity: Identity) -> Identity:
        """Add or replace a principal."""
        self._by_oid[identity.object_id] = identity
        return identity

    def remove(self, object_id: str) -> None:
        """Forget a principal (e.g. a deleted policy's managed identity)."""
        self._by_oid.pop(object_id, None)

    def by_object_id(self, object_id: str) -> Identity | None:
        """The principal with this object id."""
        return self._by_oid.get(object_id)

    def by_client_id(self, client_id: str) -> Identity | None:
        """The principal with this client (application) id."""
        return next((i for i in self._by_oid.values() if i.client_id == client_id), None)

    def by_name(self, name: str) -> Identity | None:
        """The principal with this scenario name."""
        return next((i for i in self._by_oid.values() if i.name == name), None)

    def all(self) -> list[Identity]:
        """Every principal."""
        return list(self._by_oid.values())
