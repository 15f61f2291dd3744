"""GET /msi/token: the App Service managed-identity protocol used by ManagedIdentityCredential."""

from __future__ import annotations

import time
from typing import Any

from simulator.core.errors import SimError
from simulator.core.identities import normalise_audience
from simulator.core.routing import Router, SimRequest

router = Router("identity")

TOKEN_LIFETIME_SECONDS = 3600


@router.route("GET", "/msi/token", "identity.token")
@router.route("GET", "/msi/token/", "identity.token")
def issue_token(req: SimRequest) -> dict[str, Any]:
    """A token for the identity chosen by client_id / principal_id / object_id, or the default one."""
    world = req.world
    resource = req.q("resource")
    if not resource:
        raise SimError(400, "invalid_request", "The 'resource' query parameter is required.")
    audience = normalise_audience(resource)
    if audience is None:
        raise SimError(400, "invalid_resource", f"The simulator issues no tokens for resource '{resource}'.")
    client_id = req.q("client_id")
    object_id = req.q("principal_id") or req.q("object_id")
    if client_id:
        identity = world.identities.by_client_id(client_id)
    elif object_id:
        identity = world.identities.by_object_id(object_id)
    elif world.default_identity:
        identity = world.identities.by_name(world.default_identity)
    else:
        identity = None
    if identity is None or not identity.can_sign_in:
        raise SimError(
            400,
            "invalid_identity",
            "No managed identity matches the request; pass client_id of one of the scenario identities.",
        )
    req.log_target = identity.name
    expires_on = int(time.time()) + TOKEN_LIFETIME_SECONDS
    return {
        "access_token": world.tokens.issue(identity, audience, expires_on),
        "expires_on": str(expires_on),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }
