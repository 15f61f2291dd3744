"""Reader check: the Power Platform admin holds Reader (or more) on the enterprise policy."""

from __future__ import annotations

from collections.abc import Iterable

from cmk.domain.models import RoleAssignmentInfo
from cmk.domain.resource_ids import scope_covers
from cmk.domain.roles import READ_ROLES
from cmk.preflight.findings import Finding


def check_reader_grant(
    assignments: Iterable[RoleAssignmentInfo], admin_object_id: str | None, policy_id: str | None = None
) -> list[Finding]:
    """The admin holds Reader (or Contributor/Owner) at the policy's scope or above."""
    target = policy_id or "enterprise policy"
    if not admin_object_id:
        return [
            Finding(
                "READER_ADMIN_UNKNOWN",
                "blocking",
                target,
                "The Power Platform admin's object id is not configured, so its Reader grant cannot "
                "be checked.",
                "Set admin_object_id in the Power Platform settings.",
            )
        ]
    for a in assignments:
        if a.principal_id.lower() != admin_object_id.lower() or a.role_guid not in READ_ROLES:
            continue
        if policy_id is None or scope_covers(a.scope, policy_id):
            return []
    return [
        Finding(
            "READER_NOT_GRANTED",
            "blocking",
            target,
            f"The Power Platform admin {admin_object_id} has no Reader role on the enterprise policy; "
            "adding environments fails without it.",
            "Assign Reader on the policy to the Power Platform admin (ArmService.ensure_role_assignment).",
        )
    ]
