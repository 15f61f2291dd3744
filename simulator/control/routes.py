"""/_sim/: reset, state dump, request log, faults, time and settings."""

from __future__ import annotations

from typing import Any

from simulator.core.errors import SimError
from simulator.core.routing import Router, SimRequest, SimResponse

router = Router("control")


@router.route("GET", "/_sim/health", "control.health")
def health(req: SimRequest) -> dict[str, Any]:
    """Liveness."""
    return {"status": "ok", "time": req.world.now()}


@router.route("POST", "/_sim/reset", "control.reset")
def reset(req: SimRequest) -> dict[str, Any]:
    """Rebuild the state from the scenario."""
    req.world.reset()
    return {"status": "reset"}


@router.route("GET", "/_sim/state", "control.state")
def state(req: SimRequest) -> dict[str, Any]:
    """The whole state as JSON."""
    return req.world.snapshot()


@router.route("GET", "/_sim/requests", "control.requests")
def requests(req: SimRequest) -> dict[str, Any]:
    """Recent requests, filtered by since, service, method, operation, path_contains, limit."""
    try:
        since = int(req.q("since") or 0)
        limit = int(req.q("limit")) if req.q("limit") else None
    except ValueError as exc:
        raise SimError(400, "InvalidQuery", "since and limit must be integers.") from exc
    entries = req.world.requests.query(
        since=since,
        service=req.q("service"),
        method=req.q("method"),
        operation=req.q("operation"),
        path_contains=req.q("path_contains"),
        limit=limit,
    )
    return {"value": entries, "last_seq": req.world.requests.last_seq}


@router.route("DELETE", "/_sim/requests", "control.clear_requests")
def clear_requests(req: SimRequest) -> SimResponse:
    """Forget the request log."""
    req.world.requests.clear()
    return SimResponse(204)


@router.route("GET", "/_sim/faults", "control.list_faults")
def list_faults(req: SimRequest) -> dict[str, Any]:
    """Every fault rule."""
    return {"value": req.world.faults.list()}


@router.route("POST", "/_sim/faults", "control.add_fault")
def add_fault(req: SimRequest) -> SimResponse:
    """Add a fault rule (see simulator.core.faults.FaultRule for its fields)."""
    spec = req.json()
    if not isinstance(spec, dict):
        raise SimError(400, "InvalidFaultRule", "A fault rule is a JSON object.")
    rule = req.world.faults.add(spec)
    return SimResponse(201, {"id": rule.id})


@router.route("DELETE", "/_sim/faults", "control.clear_faults")
def clear_faults(req: SimRequest) -> dict[str, Any]:
    """Remove every fault rule."""
    return {"removed": req.world.faults.clear()}


@router.route("DELETE", "/_sim/faults/{rule_id}", "control.delete_fault")
def delete_fault(req: SimRequest) -> dict[str, Any]:
    """Remove one fault rule."""
    removed = req.world.faults.clear(req.params["rule_id"])
    if not removed:
        raise SimError(404, "FaultNotFound", f"No fault rule {req.params['rule_id']}.")
    return {"removed": removed}


@router.route("GET", "/_sim/time", "control.get_time")
def get_time(req: SimRequest) -> dict[str, Any]:
    """Simulated time and its scale."""
    return {"time": req.world.now(), "scale": req.world.clock.scale}


@router.route("POST", "/_sim/time", "control.set_time")
def set_time(req: SimRequest) -> dict[str, Any]:
    """Set {"scale": x} (simulated seconds per real second) and/or {"advance": seconds}."""
    body = req.json()
    try:
        if "scale" in body:
            req.world.clock.set_scale(float(body["scale"]))
        if "advance" in body:
            req.world.clock.advance(float(body["advance"]))
    except (TypeError, ValueError) as exc:
        raise SimError(400, "InvalidTime", str(exc)) from exc
    req.world.tick()
    return {"time": req.world.now(), "scale": req.world.clock.scale}


@router.route("GET", "/_sim/settings", "control.get_settings")
def get_settings(req: SimRequest) -> dict[str, Any]:
    """The behaviour knobs."""
    return req.world.settings.as_dict()


@router.route("PATCH", "/_sim/settings", "control.set_settings")
def set_settings(req: SimRequest) -> dict[str, Any]:
    """Change behaviour knobs, e.g. {"link_seconds": 2}."""
    req.world.settings.update(req.json())
    return req.world.settings.as_dict()
