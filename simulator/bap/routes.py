"""BAP routes: thin HTTP over BapState (environments, link/unlink, governance, enable, operations)."""

from __future__ import annotations

from typing import Any

from simulator.bap import errors
from simulator.bap.models import BapState, Operation
from simulator.core.identities import Identity
from simulator.core.routing import Router, SimRequest, SimResponse

router = Router("bap", ignore_case=True)

P = "/providers/Microsoft.BusinessAppPlatform"
ADMIN_ENVS = P + "/scopes/admin/environments"
LINK_API_VERSION = "2019-10-01"
LIFECYCLE_API_VERSION = "2023-06-01"


def _state(req: SimRequest) -> BapState:
    """The BAP state of the request's world."""
    return req.world.bap


def _api_version(req: SimRequest) -> str:
    """The api-version query parameter, or a 400."""
    version = req.q("api-version")
    if not version:
        raise errors.missing_api_version()
    return version


def _admin(req: SimRequest, env_id: str) -> Identity:
    """The caller, who must hold a Power Platform admin role; others get the real service's 404."""
    caller = req.caller
    if caller is None or not caller.is_power_platform_admin:
        raise errors.environment_not_found(env_id)
    return caller


def _system_id(req: SimRequest) -> str:
    """The SystemId of a link/unlink body (field name case-insensitive)."""
    body = req.json()
    if not isinstance(body, dict):
        raise errors.invalid_body("The request body must be a JSON object with a 'SystemId' field.")
    for key, value in body.items():
        if key.lower() == "systemid":
            if not isinstance(value, str) or not value.strip():
                raise errors.invalid_body("'SystemId' must be a non-empty string.")
            return value.strip()
    raise errors.invalid_body("The request body must contain 'SystemId'.")


def _accepted(req: SimRequest, op: Operation) -> SimResponse:
    """202 with the operation-location, Location and Retry-After headers."""
    retry = str(req.world.settings.operation_retry_after)
    return SimResponse(
        202,
        None,
        {
            "operation-location": req.url(f"{P}/operations/{op.id}?api-version={LINK_API_VERSION}"),
            "Location": req.url(f"{P}/lifecycleOperations/{op.id}?api-version={LIFECYCLE_API_VERSION}"),
            "Retry-After": retry,
        },
    )


# -- environments ----------------------------------------------------------------------------
@router.route("GET", ADMIN_ENVS, "bap.list_environments")
def list_environments(req: SimRequest) -> dict[str, Any]:
    """Every environment of the tenant, paged with nextLink ($expand is accepted and ignored)."""
    version = _api_version(req)
    caller = req.caller
    if caller is None or not caller.is_power_platform_admin:
        return {"value": []}
    state = _state(req)
    size = max(1, req.world.settings.bap_page_size)
    try:
        offset = max(0, int(req.q("$skiptoken") or 0))
    except ValueError as exc:
        raise errors.invalid_body("$skiptoken is not valid.") from exc
    envs = state.list_environments()
    page = envs[offset : offset + size]
    body: dict[str, Any] = {"value": [state.render(env) for env in page]}
    if offset + size < len(envs):
        body["nextLink"] = req.url(f"{ADMIN_ENVS}?api-version={version}&$skiptoken={offset + size}")
    return body


@router.route("GET", ADMIN_ENVS + "/{env_id}", "bap.get_environment")
def get_environment(req: SimRequest) -> dict[str, Any]:
    """One environment on the admin route."""
    _api_version(req)
    env_id = req.params["env_id"]
    _admin(req, env_id)
    return _state(req).render(_state(req).get(env_id))


@router.route("GET", P + "/environments/{env_id}", "bap.get_environment_legacy")
def get_environment_legacy(req: SimRequest) -> dict[str, Any]:
    """One environment on the legacy route used by the official scripts."""
    _api_version(req)
    env_id = req.params["env_id"]
    _admin(req, env_id)
    return _state(req).render(_state(req).get(env_id), legacy=True)


@router.route("GET", ADMIN_ENVS + "/{env_id}/operations", "bap.list_environment_operations")
def list_environment_operations(req: SimRequest) -> dict[str, Any]:
    """The lifecycle operations of one environment, newest first."""
    _api_version(req)
    env_id = req.params["env_id"]
    _admin(req, env_id)
    state = _state(req)
    env = state.get(env_id)
    return {"value": [state.render_operation(op) for op in reversed(state.operations_for(env.id))]}


# -- link / unlink ----------------------------------------------------------------------------
def _link_or_unlink(req: SimRequest, action: str) -> SimResponse:
    """Shared body of link and unlink."""
    _api_version(req)
    env_id = req.params["env_id"]
    req.log_target = env_id
    caller = _admin(req, env_id)
    state = _state(req)
    state.get(env_id)
    system_id = _system_id(req)
    op = (
        state.link(env_id, system_id, caller) if action == "link" else state.unlink(env_id, system_id, caller)
    )
    return _accepted(req, op)


@router.route("POST", P + "/environments/{env_id}/enterprisePolicies/Encryption/link", "bap.link")
def link(req: SimRequest) -> SimResponse:
    """Link (or swap to) an Encryption policy: 202 + lifecycle operation."""
    return _link_or_unlink(req, "link")


@router.route("POST", P + "/environments/{env_id}/enterprisePolicies/Encryption/unlink", "bap.unlink")
def unlink(req: SimRequest) -> SimResponse:
    """Unlink the Encryption policy (back to the Microsoft-managed key): 202 + lifecycle operation."""
    return _link_or_unlink(req, "unlink")


# -- governance and re-enable ------------------------------------------------------------------
@router.route("POST", P + "/environments/{env_id}/governanceConfiguration", "bap.governance")
def governance(req: SimRequest) -> SimResponse:
    """Make the environment a Managed Environment (protectionLevel Standard) or not (Basic)."""
    _api_version(req)
    env_id = req.params["env_id"]
    req.log_target = env_id
    caller = _admin(req, env_id)
    state = _state(req)
    state.get(env_id)
    body = req.json()
    level = body.get("protectionLevel") if isinstance(body, dict) else None
    if not isinstance(level, str):
        raise errors.invalid_body("The request body must contain 'protectionLevel' ('Standard' or 'Basic').")
    return _accepted(req, state.set_governance(env_id, level, caller))


@router.route("POST", ADMIN_ENVS + "/{env_id}/enable", "bap.enable")
def enable(req: SimRequest) -> SimResponse:
    """Re-enable a disabled environment (the portal's "Re-enable environment"; simulator-defined route)."""
    _api_version(req)
    env_id = req.params["env_id"]
    req.log_target = env_id
    caller = _admin(req, env_id)
    return _accepted(req, _state(req).enable(env_id, caller))


# -- operations -------------------------------------------------------------------------------
def _operation(req: SimRequest) -> SimResponse:
    """One lifecycle operation, with Retry-After while it is not finished."""
    _api_version(req)
    caller = req.caller
    op_id = req.params["op_id"]
    if caller is None or not caller.is_power_platform_admin:
        raise errors.operation_not_found(op_id)
    state = _state(req)
    op = state.get_operation(op_id)
    headers = {} if op.terminal else {"Retry-After": str(req.world.settings.operation_retry_after)}
    return SimResponse(200, state.render_operation(op), headers)


@router.route("GET", P + "/operations/{op_id}", "bap.get_operation")
def get_operation(req: SimRequest) -> SimResponse:
    """An operation by its operation-location URL."""
    return _operation(req)


@router.route("GET", P + "/lifecycleOperations/{op_id}", "bap.get_lifecycle_operation")
def get_lifecycle_operation(req: SimRequest) -> SimResponse:
    """An operation by its Location URL."""
    return _operation(req)
