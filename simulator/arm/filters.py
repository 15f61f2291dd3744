"""The OData $filter subsets ARM's authorization APIs understand."""

from __future__ import annotations

import re

from simulator.core.errors import SimError

_PRINCIPAL = re.compile(r"principalId\s+eq\s+'([^']*)'", re.IGNORECASE)
_ASSIGNED_TO = re.compile(r"assignedTo\(\s*'([^']*)'\s*\)", re.IGNORECASE)
_AT_SCOPE = re.compile(r"atScope\(\s*\)", re.IGNORECASE)
_ROLE_ID = re.compile(r"roleDefinitionId\s+eq\s+'([^']*)'", re.IGNORECASE)
_ROLE_NAME = re.compile(r"roleName\s+eq\s+'([^']*)'", re.IGNORECASE)


def _unsupported(expr: str) -> SimError:
    return SimError(400, "UnsupportedQuery", f"The filter '{expr}' is not supported.")


def parse_assignment_filter(expr: str | None) -> tuple[bool, str | None, str | None]:
    """(atScope, principal id, role definition id) from a role-assignment $filter."""
    if not expr or not expr.strip():
        return False, None, None
    at_scope = bool(_AT_SCOPE.search(expr))
    principal = _PRINCIPAL.search(expr) or _ASSIGNED_TO.search(expr)
    role = _ROLE_ID.search(expr)
    rest = _ROLE_ID.sub("", _ASSIGNED_TO.sub("", _PRINCIPAL.sub("", _AT_SCOPE.sub("", expr))))
    if re.sub(r"\band\b", "", rest, flags=re.IGNORECASE).strip():
        raise _unsupported(expr)
    return at_scope, principal.group(1) if principal else None, role.group(1) if role else None


def parse_role_name_filter(expr: str | None) -> str | None:
    """The role name of a `roleName eq '...'` role-definition $filter."""
    if not expr or not expr.strip():
        return None
    match = _ROLE_NAME.fullmatch(expr.strip())
    if match is None:
        raise _unsupported(expr)
    return match.group(1)
