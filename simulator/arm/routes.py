"""ARM routes: thin HTTP handlers over ArmState (parse, authorize, call the model, shape the answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.arm import errors
from simulator.arm.models import ArmState
from simulator.arm.policies import POLICY_API_VERSIONS, POLICY_TYPE
from simulator.arm.timestamps import iso
from simulator.core.errors import SimError
from simulator.core.routing import Handler, Router, SimRequest, SimResponse

router = Router("arm", ignore_case=True)

SUB = "/subscriptions/{sub}"
RG = SUB + "/resourceGroups/{rg}"
KV = "/providers/Microsoft.KeyVault"
PP = "/providers/Microsoft.PowerPlatform/enterprisePolicies"
DEP = RG + "/providers/Microsoft.Resources/deployments"
AUTHZ = "/{scope:path}/providers/Microsoft.Authorization"


def arm(
    method: str, pattern: str, operation: str, *, api_versions: list[str] | None = None
) -> Callable[[Handler], Handler]:
    """Register a handler that first checks api-version and the subscription id."""

    def register(handler: Handler) -> Handler:
        def wrapped(req: SimRequest) -> SimResponse | dict[str, Any] | None:
            version = req.q("api-version")
            if not version:
                raise errors.missing_api_version()
            if api_versions is not None and version not in api_versions:
                raise errors.no_registered_provider(
                    "Microsoft.PowerPlatform", "enterprisePolicies", version, api_versions
                )
            if "sub" in req.params:
                state(req).check_subscription(req.params["sub"])
            return handler(req)

        router.add(method, pattern, f"arm.{operation}", wrapped)
        return handler

    return register


def state(req: SimRequest) -> ArmState:
    """The ARM state of the world."""
    return req.world.arm


def caller(req: SimRequest) -> str:
    """The caller's object id (app.py authenticated it)."""
    assert req.caller is not None
    return req.caller.object_id


def authorize(req: SimRequest, scope: str, action: str) -> None:
    """403 AuthorizationFailed unless the caller may perform action on scope."""
    state(req).authorize(caller(req), scope, action)


def page(items: list[Any]) -> dict[str, Any]:
    """A single-page list body."""
    return {"value": items}


def visible(req: SimRequest, items: list[tuple[str, Any]], action: str, container: str) -> list[Any]:
    """Items the caller may read: all with read on the container, else those readable one by one (or 403)."""
    arm_state = state(req)
    if arm_state.has_action(caller(req), container, action):
        return [item for _, item in items]
    readable = [item for scope, item in items if arm_state.has_action(caller(req), scope, action)]
    if not readable:
        raise errors.authorization_failed(caller(req), action, container)
    return readable


def retry_after(req: SimRequest) -> str:
    """The Retry-After value for LRO answers."""
    return str(req.world.settings.lro_retry_after)


def api_version(req: SimRequest) -> str:
    """The request's api-version (present: checked by the wrapper)."""
    return req.q("api-version") or ""


# --- operation status --------------------------------------------------------------------
def _status_body(req: SimRequest, op_id: str) -> tuple[dict[str, Any], str]:
    op, status, error = state(req).operation_status(op_id)
    body: dict[str, Any] = {"id": req.path, "name": op_id, "status": status, "startTime": iso(op.started_at)}
    if status not in ("InProgress", "Running"):
        body["endTime"] = iso(max(op.done_at, op.started_at))
    if error:
        body["error"] = error
    return body, status


@router.route("GET", SUB + KV + "/locations/{loc}/operationResults/{op}", "arm.vault_operation_status")
def vault_operation_status(req: SimRequest) -> SimResponse:
    body, status = _status_body(req, req.params["op"])
    headers = {"Retry-After": retry_after(req)} if status == "InProgress" else {}
    return SimResponse(200, body, headers)


@router.route("GET", DEP + "/{name}/operationStatuses/{op}", "arm.deployment_operation_status")
def deployment_operation_status(req: SimRequest) -> SimResponse:
    body, status = _status_body(req, req.params["op"])
    headers = {"Retry-After": retry_after(req)} if status == "Running" else {}
    return SimResponse(
        200, {"status": body["status"], **({"error": body["error"]} if "error" in body else {})}, headers
    )


@router.route("GET", SUB + "/operationresults/{op}", "arm.operation_result")
def operation_result(req: SimRequest) -> SimResponse:
    _op, status, error = state(req).operation_status(req.params["op"])
    if status == "InProgress":
        return SimResponse(
            202, None, {"Location": req.url(req.path) + "?" + _query(req), "Retry-After": retry_after(req)}
        )
    if error:
        raise SimError(400, error["code"], error["message"])
    return SimResponse(200, None)


def _query(req: SimRequest) -> str:
    return "&".join(f"{k}={v}" for k, v in req.query.items())


# --- resource groups -----------------------------------------------------------------------
RG_ACTION = "Microsoft.Resources/subscriptions/resourceGroups"


@arm("GET", SUB + "/resourcegroups", "list_resource_groups")
def list_resource_groups(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    items = [
        (arm_state.rg_scope(rg.name), rg.to_json(arm_state.subscription_id))
        for rg in arm_state.resource_groups.values()
    ]
    return page(visible(req, items, f"{RG_ACTION}/read", arm_state.subscription_scope()))


@arm("GET", RG, "get_resource_group")
def get_resource_group(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.rg_scope(req.params["rg"]), f"{RG_ACTION}/read")
    return arm_state.get_resource_group(req.params["rg"]).to_json(arm_state.subscription_id)


@arm("HEAD", RG, "check_resource_group")
def check_resource_group(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    authorize(req, arm_state.rg_scope(req.params["rg"]), f"{RG_ACTION}/read")
    return SimResponse(204 if req.params["rg"].lower() in arm_state.resource_groups else 404, None)


@arm("PUT", RG, "put_resource_group")
def put_resource_group(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    authorize(req, arm_state.rg_scope(req.params["rg"]), f"{RG_ACTION}/write")
    rg, created = arm_state.put_resource_group(req.params["rg"], req.json())
    return SimResponse(201 if created else 200, rg.to_json(arm_state.subscription_id))


@arm("DELETE", RG, "delete_resource_group")
def delete_resource_group(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    authorize(req, arm_state.rg_scope(req.params["rg"]), f"{RG_ACTION}/delete")
    op = arm_state.delete_resource_group(req.params["rg"])
    location = req.url(
        f"/subscriptions/{arm_state.subscription_id}/operationresults/{op.id}?api-version={api_version(req)}"
    )
    return SimResponse(202, None, {"Location": location, "Retry-After": retry_after(req)})


# --- providers and features ------------------------------------------------------------------
@arm("GET", SUB + "/providers", "list_providers")
def list_providers(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.Resources/subscriptions/providers/read")
    return page([arm_state.provider_json(r.name) for r in arm_state.providers.values()])


@arm("GET", SUB + "/providers/{ns}", "get_provider")
def get_provider(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.Resources/subscriptions/providers/read")
    return arm_state.provider_json(req.params["ns"])


@arm("POST", SUB + "/providers/{ns}/register", "register_provider")
def register_provider(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    reg = arm_state.provider(req.params["ns"])
    authorize(req, arm_state.subscription_scope(), f"{reg.name}/register/action")
    arm_state.register_provider(reg.name)
    return arm_state.provider_json(reg.name)


FEATURE = SUB + "/providers/Microsoft.Features/providers/{ns}/features/{feature}"


@arm("GET", SUB + "/providers/Microsoft.Features/features", "list_features")
def list_features(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.Features/features/read")
    return page([arm_state.feature_json(*r.name.split("/", 1)) for r in arm_state.features.values()])


@arm("GET", FEATURE, "get_feature")
def get_feature(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.Features/providers/features/read")
    return arm_state.feature_json(req.params["ns"], req.params["feature"])


@arm("POST", FEATURE + "/register", "register_feature")
def register_feature(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.Features/providers/features/register/action")
    arm_state.register_feature(req.params["ns"], req.params["feature"])
    return arm_state.feature_json(req.params["ns"], req.params["feature"])


# --- key vaults -----------------------------------------------------------------------------
VAULT = RG + KV + "/vaults/{name}"


@arm("GET", SUB + KV + "/vaults", "list_vaults_by_subscription")
def list_vaults_by_subscription(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    now = arm_state.now()
    items = [(v.id, v.to_json(now)) for v in arm_state.vaults.values()]
    if not items:
        return page([])
    return page(visible(req, items, "Microsoft.KeyVault/vaults/read", arm_state.subscription_scope()))


@arm("GET", SUB + KV + "/deletedVaults", "list_deleted_vaults")
def list_deleted_vaults(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.KeyVault/deletedVaults/read")
    return page([v.deleted_json(iso) for v in arm_state.deleted_vaults.values()])


@arm("GET", SUB + KV + "/locations/{loc}/deletedVaults/{name}", "get_deleted_vault")
def get_deleted_vault(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.KeyVault/locations/deletedVaults/read")
    return arm_state.get_deleted_vault(req.params["loc"], req.params["name"]).deleted_json(iso)


@arm("POST", SUB + KV + "/locations/{loc}/deletedVaults/{name}/purge", "purge_deleted_vault")
def purge_deleted_vault(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.KeyVault/locations/deletedVaults/purge/action")
    op = arm_state.purge_deleted_vault(req.params["loc"], req.params["name"])
    req.log_target = req.params["name"]
    location = req.url(
        f"/subscriptions/{arm_state.subscription_id}/operationresults/{op.id}?api-version={api_version(req)}"
    )
    return SimResponse(202, None, {"Location": location, "Retry-After": retry_after(req)})


@arm("POST", SUB + KV + "/checkNameAvailability", "check_vault_name")
def check_vault_name(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.subscription_scope(), "Microsoft.KeyVault/checkNameAvailability/read")
    name = str((req.json() or {}).get("name", ""))
    taken = name.lower() in arm_state.vaults or name.lower() in arm_state.deleted_vaults
    if taken:
        return {
            "nameAvailable": False,
            "reason": "AlreadyExists",
            "message": f"The vault name '{name}' is already in use.",
        }
    return {"nameAvailable": True}


@arm("GET", RG + KV + "/vaults", "list_vaults_by_resource_group")
def list_vaults_by_resource_group(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    rg = arm_state.get_resource_group(req.params["rg"])
    now = arm_state.now()
    items = [
        (v.id, v.to_json(now))
        for v in arm_state.vaults.values()
        if v.resource_group.lower() == rg.name.lower()
    ]
    try:
        return page(visible(req, items, "Microsoft.KeyVault/vaults/read", arm_state.rg_scope(rg.name)))
    except SimError:
        if items:
            raise
        authorize(req, arm_state.rg_scope(rg.name), "Microsoft.KeyVault/vaults/read")
        raise


@arm("GET", VAULT, "get_vault")
def get_vault(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/read")
    return arm_state.get_vault(req.params["rg"], req.params["name"]).to_json(arm_state.now())


@arm("PUT", VAULT, "put_vault")
def put_vault(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/write")
    vault, created, op = arm_state.create_or_update_vault(req.params["rg"], req.params["name"], req.json())
    req.log_target = vault.name
    status_url = req.url(
        f"/subscriptions/{arm_state.subscription_id}{KV}/locations/{vault.location}/operationResults/{op.id}"
        f"?api-version={api_version(req)}"
    )
    headers = {"Azure-AsyncOperation": status_url, "Retry-After": retry_after(req)}
    return SimResponse(201 if created else 200, vault.to_json(arm_state.now()), headers)


@arm("PATCH", VAULT, "patch_vault")
def patch_vault(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/write")
    return arm_state.update_vault(req.params["rg"], req.params["name"], req.json()).to_json(arm_state.now())


@arm("DELETE", VAULT, "delete_vault")
def delete_vault(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/delete")
    req.log_target = req.params["name"]
    return SimResponse(200 if arm_state.delete_vault(req.params["rg"], req.params["name"]) else 204, None)


PEC = VAULT + "/privateEndpointConnections"


@arm("GET", PEC, "list_private_endpoint_connections")
def list_private_endpoint_connections(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/privateEndpointConnections/read")
    vault = arm_state.get_vault(req.params["rg"], req.params["name"])
    return page([vault.connection_json(c) for c in vault.private_endpoint_connections])


@arm("GET", PEC + "/{pec}", "get_private_endpoint_connection")
def get_private_endpoint_connection(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/privateEndpointConnections/read")
    vault, connection = arm_state.get_connection(req.params["rg"], req.params["name"], req.params["pec"])
    return vault.connection_json(connection)


@arm("PUT", PEC + "/{pec}", "put_private_endpoint_connection")
def put_private_endpoint_connection(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/privateEndpointConnections/write")
    vault, connection = arm_state.put_connection(
        req.params["rg"], req.params["name"], req.params["pec"], req.json()
    )
    req.log_target = vault.name
    return vault.connection_json(connection)


@arm("DELETE", PEC + "/{pec}", "delete_private_endpoint_connection")
def delete_private_endpoint_connection(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/privateEndpointConnections/delete")
    req.log_target = req.params["name"]
    removed = arm_state.delete_connection(req.params["rg"], req.params["name"], req.params["pec"])
    return SimResponse(202 if removed else 204, None)


@arm("PUT", VAULT + "/accessPolicies/{kind}", "update_vault_access_policy")
def update_vault_access_policy(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    scope = f"{arm_state.rg_scope(req.params['rg'])}{KV}/vaults/{req.params['name']}"
    authorize(req, scope, "Microsoft.KeyVault/vaults/accessPolicies/write")
    vault = arm_state.update_vault_access_policy(
        req.params["rg"], req.params["name"], req.params["kind"], req.json()
    )
    req.log_target = vault.name
    return {
        "id": f"{vault.id}/accessPolicies/{req.params['kind'].lower()}",
        "type": "Microsoft.KeyVault/vaults/accessPolicies",
        "location": vault.location,
        "properties": {"accessPolicies": [entry.to_json() for entry in vault.access_policies]},
    }


# --- enterprise policies --------------------------------------------------------------------
POLICY = RG + PP + "/{name}"


@arm("GET", SUB + PP, "list_policies_by_subscription", api_versions=POLICY_API_VERSIONS)
def list_policies_by_subscription(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    items = [(p.id, arm_state.policy_json(p)) for p in arm_state.policies.values()]
    if not items:
        return page([])
    return page(visible(req, items, f"{POLICY_TYPE}/read", arm_state.subscription_scope()))


@arm("GET", RG + PP, "list_policies_by_resource_group", api_versions=POLICY_API_VERSIONS)
def list_policies_by_resource_group(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    rg = arm_state.get_resource_group(req.params["rg"])
    items = [
        (p.id, arm_state.policy_json(p))
        for p in arm_state.policies.values()
        if p.resource_group.lower() == rg.name.lower()
    ]
    if not items:
        authorize(req, arm_state.rg_scope(rg.name), f"{POLICY_TYPE}/read")
        return page([])
    return page(visible(req, items, f"{POLICY_TYPE}/read", arm_state.rg_scope(rg.name)))


def _policy_scope(req: SimRequest) -> str:
    return state(req).policy_id(req.params["rg"], req.params["name"])


@arm("GET", POLICY, "get_policy", api_versions=POLICY_API_VERSIONS)
def get_policy(req: SimRequest) -> dict[str, Any]:
    authorize(req, _policy_scope(req), f"{POLICY_TYPE}/read")
    arm_state = state(req)
    return arm_state.policy_json(arm_state.get_policy(req.params["rg"], req.params["name"]))


@arm("PUT", POLICY, "put_policy", api_versions=POLICY_API_VERSIONS)
def put_policy(req: SimRequest) -> SimResponse:
    authorize(req, _policy_scope(req), f"{POLICY_TYPE}/write")
    arm_state = state(req)
    policy, created = arm_state.put_policy(req.params["rg"], req.params["name"], req.json(), caller(req))
    req.log_target = policy.name
    return SimResponse(201 if created else 200, arm_state.policy_json(policy))


@arm("PATCH", POLICY, "patch_policy", api_versions=POLICY_API_VERSIONS)
def patch_policy(req: SimRequest) -> dict[str, Any]:
    authorize(req, _policy_scope(req), f"{POLICY_TYPE}/write")
    arm_state = state(req)
    policy = arm_state.patch_policy(req.params["rg"], req.params["name"], req.json())
    req.log_target = policy.name
    return arm_state.policy_json(policy)


@arm("DELETE", POLICY, "delete_policy", api_versions=POLICY_API_VERSIONS)
def delete_policy(req: SimRequest) -> SimResponse:
    authorize(req, _policy_scope(req), f"{POLICY_TYPE}/delete")
    req.log_target = req.params["name"]
    return SimResponse(200 if state(req).delete_policy(req.params["rg"], req.params["name"]) else 204, None)


# --- deployments ----------------------------------------------------------------------------
DEPLOY_ACTION = "Microsoft.Resources/deployments"


@arm("GET", DEP, "list_deployments")
def list_deployments(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, arm_state.rg_scope(req.params["rg"]), f"{DEPLOY_ACTION}/read")
    now = arm_state.now()
    return page([d.to_json(now) for d in arm_state.list_deployments(req.params["rg"])])


@arm("GET", DEP + "/{name}", "get_deployment")
def get_deployment(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(
        req,
        f"{arm_state.rg_scope(req.params['rg'])}/providers/{DEPLOY_ACTION}/{req.params['name']}",
        f"{DEPLOY_ACTION}/read",
    )
    return arm_state.get_deployment(req.params["rg"], req.params["name"]).to_json(arm_state.now())


@arm("HEAD", DEP + "/{name}", "check_deployment")
def check_deployment(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    authorize(req, arm_state.rg_scope(req.params["rg"]), f"{DEPLOY_ACTION}/read")
    found = (req.params["rg"].lower(), req.params["name"].lower()) in arm_state.deployments
    return SimResponse(204 if found else 404, None)


@arm("PUT", DEP + "/{name}", "put_deployment")
def put_deployment(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    authorize(
        req,
        f"{arm_state.rg_scope(req.params['rg'])}/providers/{DEPLOY_ACTION}/{req.params['name']}",
        f"{DEPLOY_ACTION}/write",
    )
    deployment, created = arm_state.create_deployment(
        req.params["rg"], req.params["name"], req.json(), caller(req)
    )
    req.log_target = deployment.name
    status_url = req.url(
        f"/subscriptions/{arm_state.subscription_id}/resourcegroups/{deployment.resource_group}/providers/"
        f"{DEPLOY_ACTION}/{deployment.name}/operationStatuses/{deployment.operation_id}?api-version={api_version(req)}"
    )
    headers = {"Azure-AsyncOperation": status_url, "Retry-After": retry_after(req)}
    return SimResponse(201 if created else 200, deployment.to_json(arm_state.now()), headers)


@arm("DELETE", DEP + "/{name}", "delete_deployment")
def delete_deployment(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    authorize(req, arm_state.rg_scope(req.params["rg"]), f"{DEPLOY_ACTION}/delete")
    arm_state.get_resource_group(req.params["rg"])
    removed = arm_state.deployments.pop((req.params["rg"].lower(), req.params["name"].lower()), None)
    return SimResponse(204 if removed is None else 200, None)


@arm("POST", DEP + "/{name}/validate", "validate_deployment")
def validate_deployment(req: SimRequest) -> SimResponse:
    arm_state = state(req)
    authorize(req, arm_state.rg_scope(req.params["rg"]), f"{DEPLOY_ACTION}/validate/action")
    body = req.json()
    try:
        planned = arm_state.validate_deployment(req.params["rg"], body)
    except SimError as err:
        if err.status != 400:
            raise
        return SimResponse(400, err.body())
    deployment_id = f"{arm_state.rg_scope(req.params['rg'])}/providers/{DEPLOY_ACTION}/{req.params['name']}"
    return SimResponse(
        200,
        {
            "id": deployment_id,
            "name": req.params["name"],
            "type": DEPLOY_ACTION,
            "properties": {
                "provisioningState": "Succeeded",
                "mode": (body.get("properties") or {}).get("mode", "Incremental"),
                "validatedResources": [
                    {"id": arm_state.policy_id(req.params["rg"], r.name)} for r in planned.resources
                ],
            },
        },
    )


# --- role definitions and assignments (any scope) ---------------------------------------------
def _scope(req: SimRequest) -> str:
    return "/" + req.params["scope"].strip("/")


def _assignment_json(req: SimRequest, ra: Any) -> dict[str, Any]:
    return ra.to_json(state(req).subscription_id, iso)


@arm("GET", AUTHZ + "/roleDefinitions", "list_role_definitions")
def list_role_definitions(req: SimRequest) -> dict[str, Any]:
    arm_state = state(req)
    authorize(req, _scope(req), "Microsoft.Authorization/roleDefinitions/read")
    return page([r.to_json(arm_state.subscription_id) for r in arm_state.role_definitions(req.q("$filter"))])


@arm("GET", AUTHZ + "/roleDefinitions/{id}", "get_role_definition")
def get_role_definition(req: SimRequest) -> dict[str, Any]:
    from simulator.arm.rbac import role_by_guid

    authorize(req, _scope(req), "Microsoft.Authorization/roleDefinitions/read")
    role = role_by_guid(req.params["id"])
    if role is None:
        raise SimError(
            404,
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{req.params['id']}' does not exist.",
        )
    return role.to_json(state(req).subscription_id)


@arm("GET", AUTHZ + "/roleAssignments", "list_role_assignments")
def list_role_assignments(req: SimRequest) -> dict[str, Any]:
    scope = _scope(req)
    authorize(req, scope, "Microsoft.Authorization/roleAssignments/read")
    found = state(req).list_role_assignments(scope, req.q("$filter"))
    return page([_assignment_json(req, ra) for ra in found])


@arm("GET", AUTHZ + "/roleAssignments/{name}", "get_role_assignment")
def get_role_assignment(req: SimRequest) -> dict[str, Any]:
    scope = _scope(req)
    authorize(req, scope, "Microsoft.Authorization/roleAssignments/read")
    return _assignment_json(req, state(req).get_role_assignment(scope, req.params["name"]))


@arm("PUT", AUTHZ + "/roleAssignments/{name}", "create_role_assignment")
def create_role_assignment(req: SimRequest) -> SimResponse:
    scope = _scope(req)
    authorize(req, scope, "Microsoft.Authorization/roleAssignments/write")
    ra, created = state(req).create_role_assignment(scope, req.params["name"], req.json(), caller(req))
    req.log_target = f"{ra.role.name} -> {ra.principal_id}"
    return SimResponse(201 if created else 200, _assignment_json(req, ra))


@arm("DELETE", AUTHZ + "/roleAssignments/{name}", "delete_role_assignment")
def delete_role_assignment(req: SimRequest) -> SimResponse:
    scope = _scope(req)
    authorize(req, scope, "Microsoft.Authorization/roleAssignments/delete")
    ra = state(req).delete_role_assignment(scope, req.params["name"])
    return SimResponse(204, None) if ra is None else SimResponse(200, _assignment_json(req, ra))
