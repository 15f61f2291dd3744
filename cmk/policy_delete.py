"""Delete an enterprise policy through ARM (ArmService has no delete yet; this uses its management pipeline)."""

from __future__ import annotations

from azure.core.rest import HttpRequest

from cmk.arm import ArmService
from cmk.errors import from_azure_error
from cmk.resource_ids import parse_policy_id


def delete_enterprise_policy(arm: ArmService, policy_id: str) -> bool:
    """DELETE the policy; True when it existed. The service refuses (400) while environments are linked."""
    parse_policy_id(policy_id)
    before = arm.find_policy(policy_id)
    if before is None:
        return False
    url = f"{policy_id}?api-version={arm.settings.policy_api_version}"
    try:
        response = arm.resources.send_request(HttpRequest("DELETE", url))
        response.raise_for_status()
    except Exception as exc:
        raise from_azure_error(exc, action="Deleting the enterprise policy", target=policy_id) from exc
    arm.audit.record(
        action="arm.enterprise_policy.delete",
        target=policy_id,
        before=before.to_dict(),
        after=None,
        correlation_id=response.headers.get("x-ms-correlation-request-id")
        or response.headers.get("x-ms-request-id"),
    )
    return True
