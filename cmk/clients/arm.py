"""Azure Resource Manager: provider and feature registration, enterprise policies, role assignments."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.features import FeatureClient
from azure.mgmt.resource.resources import ResourceManagementClient

from cmk.clients.credentials import build_credential
from cmk.clients.sdk import CorrelationCapture, mgmt_kwargs, translated
from cmk.clients.settings import AzureSettings
from cmk.domain.models import PolicyInfo, RoleAssignmentInfo
from cmk.domain.resource_ids import parse_policy_id, parse_vault_id, policy_id, same_id
from cmk.domain.roles import role_definition_id, role_guid
from cmk.errors import (
    ConfigurationError,
    NotFoundError,
    OperationFailedError,
    OperationTimeoutError,
    correlation_id_from,
    from_azure_error,
)
from cmk.state.journal import Journal, JournalContext

TEMPLATE_POLICY_API_VERSION = "2020-10-30"  # what Microsoft's own templates use
TEMPLATE_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def policy_info(data: dict[str, Any]) -> PolicyInfo:
    """A PolicyInfo from the policy's REST JSON (principalId or systemAssignedIdentityPrincipalId)."""
    props = data.get("properties") or {}
    identity = data.get("identity") or {}
    encryption = props.get("encryption") or {}
    key_vault = encryption.get("keyVault") or {}
    key = key_vault.get("key") or {}
    ref = parse_policy_id(data["id"])
    return PolicyInfo(
        id=data["id"],
        name=data.get("name") or ref.name,
        resource_group=ref.resource_group,
        location=data.get("location") or "",
        kind=data.get("kind") or "",
        system_id=props.get("systemId"),
        principal_id=identity.get("principalId") or identity.get("systemAssignedIdentityPrincipalId"),
        tenant_id=identity.get("tenantId"),
        vault_id=key_vault.get("id"),
        key_name=key.get("name"),
        key_version=key.get("version") or None,
        health=props.get("healthStatus"),
        identity_type=identity.get("type"),
        encryption_state=encryption.get("state"),
    )


def role_assignment_info(assignment: Any) -> RoleAssignmentInfo:
    """A RoleAssignmentInfo from the SDK's RoleAssignment model."""
    return RoleAssignmentInfo(
        id=assignment.id,
        name=assignment.name,
        scope=assignment.scope or assignment.id.split("/providers/Microsoft.Authorization/")[0],
        role_definition_id=assignment.role_definition_id,
        principal_id=assignment.principal_id,
        principal_type=str(getattr(assignment.principal_type, "value", assignment.principal_type) or "")
        or None,
    )


def encryption_policy_template(
    name: str, location: str, vault_id: str, key_name: str, key_version: str | None
) -> dict[str, Any]:
    """The ARM template Microsoft's scripts deploy for an Encryption enterprise policy."""
    key: dict[str, Any] = {"name": key_name}
    if key_version:
        key["version"] = key_version
    return {
        "$schema": TEMPLATE_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {},
        "resources": [
            {
                "type": "Microsoft.PowerPlatform/enterprisePolicies",
                "apiVersion": TEMPLATE_POLICY_API_VERSION,
                "name": name,
                "location": location,
                "kind": "Encryption",
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "encryption": {"state": "Enabled", "keyVault": {"id": vault_id, "key": key}},
                    "networkInjection": None,
                },
            }
        ],
    }


class ArmService:
    """ARM calls of the Azure-side identity; every mutation is journaled."""

    def __init__(
        self,
        settings: AzureSettings,
        journal: Journal | None = None,
        *,
        credential: TokenCredential | None = None,
        change_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.credential = credential or build_credential(settings)
        self.audit = JournalContext(journal, settings.actor, change_id)
        self.sleep = sleep
        self.clock = clock
        sub = settings.subscription_id
        kwargs = mgmt_kwargs(settings)
        self.resources = ResourceManagementClient(self.credential, sub, **kwargs)
        self.features = FeatureClient(self.credential, sub, **kwargs)
        self.deployments = DeploymentsMgmtClient(self.credential, sub, **kwargs)
        self.authorization = AuthorizationManagementClient(self.credential, sub, **kwargs)

    def close(self) -> None:
        """Close the clients' connection pools."""
        for client in (self.resources, self.features, self.deployments, self.authorization):
            client.close()

    def __enter__(self) -> ArmService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registration ----------------------------------------------------------------------------------
    def provider_state(self, namespace: str = "Microsoft.PowerPlatform") -> str:
        """The resource provider's registration state on the subscription (Registered, NotRegistered, ...)."""
        target = f"/subscriptions/{self.settings.subscription_id}/providers/{namespace}"
        with translated("Reading the resource provider", target):
            return str(self.resources.providers.get(namespace).registration_state)

    def ensure_provider_registered(
        self, namespace: str = "Microsoft.PowerPlatform", timeout: float = 300, poll: float = 10
    ) -> str:
        """Register the resource provider if needed and wait until Registered; returns the final state."""
        target = f"/subscriptions/{self.settings.subscription_id}/providers/{namespace}"

        def state() -> str:
            return self.provider_state(namespace)

        before = state()
        if before == "Registered":
            return before
        if before not in ("Registering",):
            capture = CorrelationCapture()
            with translated("Registering the resource provider", target):
                self.resources.providers.register(namespace, raw_response_hook=capture)
            self.audit.record(
                action="arm.provider.register",
                target=target,
                before={"registrationState": before},
                after={"registrationState": "Registering"},
                correlation_id=capture.correlation_id,
            )
        return self._wait_for(
            state, "Registered", timeout, poll, f"provider {namespace} registration", target
        )

    def ensure_feature_registered(
        self,
        namespace: str = "Microsoft.PowerPlatform",
        feature: str = "enterprisePoliciesPreview",
        timeout: float = 300,
        poll: float = 10,
    ) -> str:
        """Register a preview feature if needed and wait until Registered; returns the final state."""
        target = (
            f"/subscriptions/{self.settings.subscription_id}/providers/Microsoft.Features"
            f"/providers/{namespace}/features/{feature}"
        )

        def state() -> str:
            with translated("Reading the feature registration", target):
                return str(self.features.features.get(namespace, feature).properties.state)

        before = state()
        if before == "Registered":
            return before
        if before not in ("Registering", "Pending"):
            capture = CorrelationCapture()
            with translated("Registering the feature", target):
                self.features.features.register(namespace, feature, raw_response_hook=capture)
            self.audit.record(
                action="arm.feature.register",
                target=target,
                before={"state": before},
                after={"state": "Registering"},
                correlation_id=capture.correlation_id,
            )
        return self._wait_for(state, "Registered", timeout, poll, f"feature {namespace}/{feature}", target)

    def _wait_for(
        self, read: Callable[[], str], wanted: str, timeout: float, poll: float, what: str, target: str
    ) -> str:
        deadline = self.clock() + timeout
        while True:
            current = read()
            if current == wanted:
                return current
            if self.clock() >= deadline:
                raise OperationTimeoutError(
                    f"The {what} is still {current} after {timeout:g} s. It may take longer: run the "
                    "step again "
                    "later (it resumes waiting), or check the subscription in the Azure portal.",
                    target=target,
                )
            self.sleep(max(0.0, min(poll, deadline - self.clock())))

    # -- enterprise policies ---------------------------------------------------------------------------
    def _get_json(self, url: str, action: str, target: str) -> dict[str, Any]:
        try:
            response = self.resources.send_request(HttpRequest("GET", url))
            response.raise_for_status()
            return response.json()
        except HttpResponseError as exc:
            raise from_azure_error(exc, action=action, target=target) from exc
        except Exception as exc:
            raise from_azure_error(exc, action=action, target=target) from exc

    def get_policy(self, policy_id: str) -> PolicyInfo:
        """An enterprise policy, read with plain ARM REST through the management pipeline."""
        parse_policy_id(policy_id)
        url = f"{policy_id}?api-version={self.settings.policy_api_version}"
        return policy_info(self._get_json(url, "Reading the enterprise policy", policy_id))

    def find_policy(self, policy_id: str) -> PolicyInfo | None:
        """The policy, or None when it does not exist."""
        try:
            return self.get_policy(policy_id)
        except NotFoundError:
            return None

    def list_policies(self, kind: str | None = "Encryption") -> list[PolicyInfo]:
        """Enterprise policies of the subscription (following nextLink), of one kind unless kind is None."""
        url: str | None = (
            f"/subscriptions/{self.settings.subscription_id}/providers/Microsoft.PowerPlatform/enterprisePolicies"
            f"?api-version={self.settings.policy_api_version}"
        )
        out: list[PolicyInfo] = []
        while url:
            page = self._get_json(url, "Listing enterprise policies", self.settings.subscription_id)
            out.extend(policy_info(item) for item in page.get("value") or [])
            url = page.get("nextLink")
        return [p for p in out if kind is None or p.kind.lower() == kind.lower()]

    @staticmethod
    def _matches(
        policy: PolicyInfo, location: str, vault_id: str, key_name: str, key_version: str | None
    ) -> bool:
        return (
            policy.kind.lower() == "encryption"
            and policy.location.lower() == location.lower()
            and same_id(policy.vault_id, vault_id)
            and (policy.key_name or "").lower() == key_name.lower()
            and (policy.key_version or None) == (key_version or None)
        )

    def deploy_enterprise_policy(
        self,
        resource_group: str,
        name: str,
        location: str,
        vault_id: str,
        key_name: str,
        key_version: str | None = None,
        deployment_name: str | None = None,
    ) -> PolicyInfo:
        """Create or update the Encryption policy by template deployment; skipped when it already matches."""
        parse_vault_id(vault_id)
        target = policy_id(self.settings.subscription_id, resource_group, name)
        existing = self.find_policy(target)
        if existing is not None and self._matches(existing, location, vault_id, key_name, key_version):
            return existing
        template = encryption_policy_template(name, location, vault_id, key_name, key_version)
        deployment = (deployment_name or f"cmk-ep-{name}")[:64]
        capture = CorrelationCapture()
        try:
            poller = self.deployments.deployments.begin_create_or_update(
                resource_group,
                deployment,
                {"properties": {"mode": "Incremental", "template": template}},
                raw_response_hook=capture,
            )
            poller.result()
        except HttpResponseError as exc:
            if exc.status_code is not None and exc.status_code < 400:  # the LRO itself ended Failed
                error = getattr(exc, "error", None)
                raise OperationFailedError(
                    f"The deployment {deployment} of enterprise policy {name} failed: "
                    f"{getattr(error, 'message', None) or exc.message}. Fix the cause named here and "
                    "run again.",
                    code=getattr(error, "code", None),
                    target=target,
                    correlation_id=capture.correlation_id
                    or correlation_id_from(exc.response.headers if exc.response else None),
                ) from exc
            raise from_azure_error(exc, action="Deploying the enterprise policy", target=target) from exc
        except Exception as exc:
            raise from_azure_error(exc, action="Deploying the enterprise policy", target=target) from exc
        policy = self.get_policy(target)
        self.audit.record(
            action="arm.enterprise_policy.deploy",
            target=target,
            before=existing.to_dict() if existing else None,
            after=policy.to_dict(),
            correlation_id=capture.correlation_id,
            detail={"deployment": deployment},
        )
        return policy

    def wait_for_policy_identity(self, policy_id: str, timeout: float = 300, poll: float = 10) -> PolicyInfo:
        """Re-read the policy until identity.principalId and systemId appear (they can lag creation)."""
        deadline = self.clock() + timeout
        while True:
            policy = self.get_policy(policy_id)
            if policy.principal_id and policy.system_id:
                return policy
            if self.clock() >= deadline:
                raise OperationTimeoutError(
                    f"Enterprise policy {policy.name} has no managed identity (principalId) yet after "
                    f"{timeout:g} s. "
                    "The identity can take minutes to appear: run the step again later.",
                    target=policy_id,
                )
            self.sleep(max(0.0, min(poll, deadline - self.clock())))

    # -- role assignments ------------------------------------------------------------------------------
    def _resolve_role(self, scope: str, role: str) -> str:
        guid = role_guid(role)
        if guid:
            return guid
        with translated("Looking up the role definition", scope):
            found = list(self.authorization.role_definitions.list(scope, filter=f"roleName eq '{role}'"))
        if not found:
            raise ConfigurationError(
                f"No role named '{role}' exists at {scope}. Use a built-in role name or a role "
                "definition GUID.",
                target=scope,
            )
        return found[0].name.lower()

    def list_role_assignments(self, scope: str, principal_id: str | None = None) -> list[RoleAssignmentInfo]:
        """Role assignments that apply at scope (at it and above), optionally for one principal."""
        filter_ = f"principalId eq '{principal_id}'" if principal_id else None
        with translated("Listing role assignments", scope):
            found = [
                role_assignment_info(a)
                for a in self.authorization.role_assignments.list_for_scope(scope, filter=filter_)
            ]
        if principal_id:
            found = [a for a in found if a.principal_id.lower() == principal_id.lower()]
        return found

    def ensure_role_assignment(
        self, scope: str, principal_id: str, role: str, principal_type: str = "ServicePrincipal"
    ) -> tuple[str, bool]:
        """Assign a role at scope unless the principal already holds it there; (assignment id, created)."""
        guid = self._resolve_role(scope, role)

        def existing() -> RoleAssignmentInfo | None:
            for assignment in self.list_role_assignments(scope, principal_id):
                if assignment.role_guid == guid and same_id(assignment.scope, scope):
                    return assignment
            return None

        found = existing()
        if found is not None:
            return found.id, False
        # A name derived from (scope, principal, role) makes a retried PUT address the same assignment.
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope.lower()}|{principal_id.lower()}|{guid}"))
        params = RoleAssignmentCreateParameters(
            role_definition_id=role_definition_id(self.settings.subscription_id, guid),
            principal_id=principal_id,
            principal_type=principal_type,
        )
        capture = CorrelationCapture()
        try:
            created = self.authorization.role_assignments.create(
                scope, name, params, raw_response_hook=capture
            )
        except ResourceExistsError:
            # 409 RoleAssignmentExists: someone granted it meanwhile (maybe under another name): success.
            again = existing()
            if again is None:
                raise
            return again.id, False
        except Exception as exc:
            raise from_azure_error(exc, action="Creating the role assignment", target=scope) from exc
        self.audit.record(
            action="arm.role_assignment.create",
            target=scope,
            before=None,
            after={
                "id": created.id,
                "principal_id": principal_id,
                "role": guid,
                "principal_type": principal_type,
            },
            correlation_id=capture.correlation_id,
        )
        return created.id, True

    def delete_enterprise_policy(self, policy_id: str) -> bool:
        """DELETE the policy; True when it existed. The service refuses (400) while environments are linked."""
        parse_policy_id(policy_id)
        before = self.find_policy(policy_id)
        if before is None:
            return False
        url = f"{policy_id}?api-version={self.settings.policy_api_version}"
        try:
            response = self.resources.send_request(HttpRequest("DELETE", url))
            response.raise_for_status()
        except Exception as exc:
            raise from_azure_error(exc, action="Deleting the enterprise policy", target=policy_id) from exc
        self.audit.record(
            action="arm.enterprise_policy.delete",
            target=policy_id,
            before=before.to_dict(),
            after=None,
            correlation_id=response.headers.get("x-ms-correlation-request-id")
            or response.headers.get("x-ms-request-id"),
        )
        return True

    def delete_role_assignment(self, assignment_id: str) -> bool:
        """Delete a role assignment by id; False when it did not exist (404 or 204)."""
        capture = CorrelationCapture()
        try:
            deleted = self.authorization.role_assignments.delete_by_id(
                assignment_id, raw_response_hook=capture
            )
        except ResourceNotFoundError:
            return False
        except Exception as exc:
            raise from_azure_error(exc, action="Deleting the role assignment", target=assignment_id) from exc
        if deleted is None:  # 204: there was nothing to delete
            return False
        before = role_assignment_info(deleted).__dict__
        self.audit.record(
            action="arm.role_assignment.delete",
            target=assignment_id,
            before=before,
            after=None,
            correlation_id=capture.correlation_id,
        )
        return True
