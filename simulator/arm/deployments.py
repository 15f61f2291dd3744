"""Template deployments at resource-group scope: accepted now, executed at tick after deployment_seconds."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from simulator.arm import errors
from simulator.arm.groups import ResourceGroupBackend
from simulator.arm.operations import AsyncOperation, OperationLog
from simulator.arm.policies import POLICY_TYPE, PolicyBackend
from simulator.arm.providers import PP_NAMESPACE, RegistrationBackend
from simulator.arm.rbac import RbacBackend
from simulator.arm.templates import TemplateError, TemplatePlan, plan
from simulator.arm.timestamps import iso
from simulator.core.errors import SimError
from simulator.core.tenant import Tenant


@dataclass
class Deployment:
    """A template deployment at resource-group scope."""

    name: str
    subscription_id: str
    resource_group: str
    template: dict[str, Any]
    parameters: dict[str, Any]
    mode: str
    caller_oid: str
    started_at: float
    done_at: float
    correlation_id: str
    operation_id: str
    plan: TemplatePlan | None = None
    plan_error: TemplateError | None = None
    state: str = "Accepted"  # Accepted -> Running -> Succeeded | Failed
    error: dict[str, Any] | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    output_resources: list[str] = field(default_factory=list)
    finished_at: float | None = None

    @property
    def id(self) -> str:
        """The deployment's ARM id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Resources/deployments/{self.name}"
        )

    def provisioning_state(self, now: float) -> str:
        """Accepted, Running, Succeeded or Failed."""
        if self.state in ("Succeeded", "Failed"):
            return self.state
        return "Running" if now > self.started_at else "Accepted"

    def to_json(self, now: float) -> dict[str, Any]:
        """The DeploymentExtended resource."""
        end = self.finished_at if self.finished_at is not None else now
        params_out = {
            name: {
                "type": type(entry.get("value")).__name__.replace("str", "String"),
                "value": entry.get("value"),
            }
            for name, entry in self.parameters.items()
            if isinstance(entry, dict)
        }
        properties: dict[str, Any] = {
            "templateHash": hashlib.sha256(repr(self.template).encode()).hexdigest()[:20],
            "parameters": params_out,
            "mode": self.mode,
            "provisioningState": self.provisioning_state(now),
            "timestamp": iso(end),
            "duration": f"PT{max(0.0, end - self.started_at):.3f}S",
            "correlationId": self.correlation_id,
            "providers": [
                {"namespace": PP_NAMESPACE, "resourceTypes": [{"resourceType": "enterprisePolicies"}]}
            ],
            "dependencies": [],
            "outputs": self.outputs if self.state == "Succeeded" else None,
            "outputResources": [{"id": rid} for rid in self.output_resources],
        }
        if self.error:
            properties["error"] = self.error
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Resources/deployments",
            "properties": properties,
        }


class DeploymentBackend:
    """Deployments by (lower-case group, lower-case name); each creates or updates policies as its caller."""

    def __init__(
        self,
        tenant: Tenant,
        groups: ResourceGroupBackend,
        registrations: RegistrationBackend,
        rbac: RbacBackend,
        policies: PolicyBackend,
        operations: OperationLog,
    ) -> None:
        self.tenant = tenant
        self.groups = groups
        self.registrations = registrations
        self.rbac = rbac
        self.policies = policies
        self.operations = operations
        self.deployments: dict[tuple[str, str], Deployment] = {}

    def tick(self, now: float) -> None:
        """Execute every deployment whose time has come."""
        for deployment in list(self.deployments.values()):
            if deployment.state in ("Accepted", "Running") and now >= deployment.done_at:
                self._execute(deployment, now)

    def by_operation(self, op_id: str) -> Deployment | None:
        """The deployment tracked by this operation id."""
        return next((d for d in self.deployments.values() if d.operation_id == op_id), None)

    def get_deployment(self, resource_group: str, name: str) -> Deployment:
        """A deployment, or 404 DeploymentNotFound."""
        self.groups.get_resource_group(resource_group)
        deployment = self.deployments.get((resource_group.lower(), name.lower()))
        if deployment is None:
            raise SimError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
        return deployment

    def validate_deployment(self, resource_group: str, body: Any) -> TemplatePlan:
        """Check a deployment body; raises SimError 400 InvalidTemplate(-ish) when it cannot run."""
        self.groups.get_resource_group(resource_group)
        template, parameters, _mode = self._deployment_parts(body)
        try:
            return plan(template, parameters)
        except TemplateError as err:
            raise SimError(400, err.code, err.message) from err

    def _deployment_parts(self, body: Any) -> tuple[Any, Any, str]:
        """(template, parameters, mode) of a deployment body, or a 400."""
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise SimError(400, "InvalidRequestContent", "The request content must have 'properties'.")
        if "templateLink" in props or "parametersLink" in props:
            raise SimError(
                400,
                "UnsupportedTemplateFeature",
                "templateLink and parametersLink are not supported by the "
                "simulator; send the template inline.",
            )
        if "template" not in props:
            raise SimError(400, "InvalidDeployment", "The deployment must have 'properties.template'.")
        mode = str(props.get("mode") or "Incremental")
        if mode.lower() not in ("incremental", "complete"):
            raise SimError(400, "InvalidDeploymentMode", f"The deployment mode '{mode}' is not valid.")
        return props["template"], props.get("parameters") or {}, mode

    def create_deployment(
        self, resource_group: str, name: str, body: Any, caller_oid: str
    ) -> tuple[Deployment, bool]:
        """PUT a deployment that executes at tick after deployment_seconds; returns (deployment, created)."""
        rg = self.groups.get_resource_group(resource_group)
        template, parameters, mode = self._deployment_parts(body)
        key = (rg.name.lower(), name.lower())
        previous = self.deployments.get(key)
        now = self.tenant.now()
        if previous is not None and previous.state in ("Accepted", "Running"):
            raise SimError(
                409,
                "DeploymentActive",
                f"Unable to edit or replace deployment '{name}': previous deployment from "
                f"'{iso(previous.started_at)}' is still active (current provisioning state is "
                f"'{previous.provisioning_state(now)}'). Please see https://aka.ms/arm-deploy for usage "
                "details.",
            )
        deployment = Deployment(
            name=name,
            subscription_id=self.tenant.subscription_id,
            resource_group=rg.name,
            template=template if isinstance(template, dict) else {},
            parameters=parameters if isinstance(parameters, dict) else {},
            mode=mode[:1].upper() + mode[1:].lower(),
            caller_oid=caller_oid,
            started_at=now,
            done_at=now + self.tenant.settings.deployment_seconds,
            correlation_id=str(uuid.uuid4()),
            operation_id=uuid.uuid4().hex,
        )
        try:
            deployment.plan = plan(template, parameters)
            self._register_provider_for(deployment)
            if deployment.mode == "Complete":
                raise TemplateError(
                    "UnsupportedDeploymentMode",
                    "The simulator only supports deployments in 'Incremental' mode.",
                )
        except TemplateError as err:
            deployment.plan, deployment.plan_error = None, err
        self.deployments[key] = deployment
        self.operations.add(
            AsyncOperation(deployment.operation_id, "deployment", deployment.id, now, deployment.done_at)
        )
        return deployment, previous is None

    def _register_provider_for(self, deployment: Deployment) -> None:
        """Register Microsoft.PowerPlatform for the deployment, as ARM does, when the caller may register it."""
        if not deployment.plan or not deployment.plan.resources:
            return
        if self.registrations.provider_state(PP_NAMESPACE) == "Registered":
            return
        scope = self.groups.subscription_scope()
        if not self.rbac.has_action(deployment.caller_oid, scope, f"{PP_NAMESPACE}/register/action"):
            return  # the deployment then fails with MissingSubscriptionRegistration, as in ARM
        registration = self.registrations.register_provider(PP_NAMESPACE)
        if registration.started_at is not None:
            registered_at = registration.started_at + self.tenant.settings.provider_registration_seconds
            deployment.done_at = max(deployment.done_at, registered_at)

    def _execute(self, deployment: Deployment, now: float) -> None:
        """Run the plan: create or update each policy as the caller; record outputs or the failure."""
        deployment.finished_at = now
        if deployment.plan_error is not None:
            deployment.state = "Failed"
            deployment.error = errors.error_body(deployment.plan_error.code, deployment.plan_error.message)
            return
        assert deployment.plan is not None
        details: list[dict[str, Any]] = []
        for resource in deployment.plan.resources:
            resource_id = self.policies.policy_id(deployment.resource_group, resource.name)
            try:
                if not self.rbac.has_action(deployment.caller_oid, resource_id, f"{POLICY_TYPE}/write"):
                    raise errors.authorization_failed(
                        deployment.caller_oid, f"{POLICY_TYPE}/write", resource_id
                    )
                if self.registrations.provider_state(PP_NAMESPACE) != "Registered":
                    raise errors.missing_registration(PP_NAMESPACE)
                self.policies.put_policy(
                    deployment.resource_group, resource.name, resource.body, deployment.caller_oid
                )
                deployment.output_resources.append(resource_id)
            except SimError as err:
                detail = err.body()["error"]
                detail.setdefault("target", resource_id)
                details.append(detail)
        if details:
            deployment.state = "Failed"
            deployment.error = errors.error_body(
                "DeploymentFailed",
                "At least one resource deployment operation failed. Please list deployment operations for "
                "details. "
                "Please see https://aka.ms/arm-deployment-operations for usage details.",
                details,
            )
            return
        deployment.state = "Succeeded"
        deployment.outputs = deployment.plan.outputs

    def list_deployments(self, resource_group: str) -> list[Deployment]:
        """The group's deployments."""
        rg = self.groups.get_resource_group(resource_group)
        return [d for (g, _), d in self.deployments.items() if g == rg.name.lower()]
