"""BAP wire errors: real codes where known, documented plausible ones elsewhere (docs/simulator.md)."""

from __future__ import annotations

from simulator.core.errors import SimError


def missing_api_version() -> SimError:
    """400 when the api-version query parameter is absent."""
    return SimError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def environment_not_found(env_id: str) -> SimError:
    """404 for an unknown environment and for callers without the Power Platform admin role (as real)."""
    return SimError(
        404,
        "EnvironmentNotFound",
        f"The environment '{env_id}' could not be found in the tenant. Check that the environment exists and "
        "that the caller has the Power Platform Administrator or Dynamics 365 Administrator role.",
    )


def operation_not_found(op_id: str) -> SimError:
    """404 for an unknown lifecycle operation."""
    return SimError(404, "OperationNotFound", f"The lifecycle operation '{op_id}' could not be found.")


def operation_not_startable(env_id: str) -> SimError:
    """409 while any lifecycle operation runs on the environment (verbatim message, TF issue #717)."""
    return SimError(
        409,
        "OperationNotStartable",
        "This operation cannot be performed because there is an active lifecycle operation on the "
        f"environment '{env_id}'.",
        extra={"detailUrlType": "NotSpecified"},
    )


def already_managed(env_id: str) -> SimError:
    """409 when a Managed Environment is asked to become managed again."""
    return SimError(
        409,
        "OperationNotStartable",
        f"The environment '{env_id}' already has the requested governance configuration.",
        extra={"detailUrlType": "NotSpecified"},
    )


def invalid_body(message: str) -> SimError:
    """400 for a missing or malformed request body."""
    return SimError(400, "InvalidRequestBody", message)


def policy_not_found(system_id: str) -> SimError:
    """400 when no enterprise policy has this systemId."""
    return SimError(
        400,
        "EnterprisePolicyNotFound",
        f"The enterprise policy with system id '{system_id}' could not be found.",
    )


def policy_kind_mismatch(system_id: str, kind: str) -> SimError:
    """400 when the policy is not an Encryption policy."""
    return SimError(
        400,
        "EnterprisePolicyKindMismatch",
        f"The enterprise policy '{system_id}' is of kind '{kind}', but the request is for 'Encryption'.",
    )


def location_mismatch(env_id: str, env_geo: str, policy_geo: str) -> SimError:
    """400 when environment geo and policy location differ."""
    return SimError(
        400,
        "EnterprisePolicyLocationMismatch",
        f"The environment '{env_id}' is in '{env_geo}' but the enterprise policy is in '{policy_geo}'. "
        "An environment can only be linked to an enterprise policy in the same geo.",
    )


def sku_not_supported(env_id: str, sku: str) -> SimError:
    """400 for Trial and Teams environments."""
    return SimError(
        400,
        "EnvironmentSkuNotSupported",
        f"The environment '{env_id}' has SKU '{sku}'. Trial and Teams environments cannot use a "
        "customer-managed key or become Managed Environments.",
    )


def not_managed(env_id: str) -> SimError:
    """400 when the environment is not a Managed Environment."""
    return SimError(
        400,
        "ManagedEnvironmentRequired",
        f"The environment '{env_id}' is not a Managed Environment. Only Managed Environments can be linked "
        "to an Encryption enterprise policy.",
    )


def reader_required(caller_oid: str, policy_id: str) -> SimError:
    """403 when the caller has no read access to the policy in ARM."""
    return SimError(
        403,
        "EnterprisePolicyAccessDenied",
        f"The caller '{caller_oid}' does not have permission to read the enterprise policy '{policy_id}' "
        "(Microsoft.PowerPlatform/enterprisePolicies/read). Assign the Reader role on the policy.",
    )


def not_linked(env_id: str, system_id: str) -> SimError:
    """400 when unlinking a policy that is not linked to the environment."""
    return SimError(
        400,
        "EnterprisePolicyNotLinked",
        f"The enterprise policy '{system_id}' is not linked to the environment '{env_id}'.",
    )


def still_linked(env_id: str) -> SimError:
    """400 when a CMK environment is asked to stop being managed."""
    return SimError(
        400,
        "ManagedEnvironmentRequired",
        f"The environment '{env_id}' uses a customer-managed key and must remain a Managed Environment.",
    )


def not_disabled(env_id: str) -> SimError:
    """409 when enabling an environment that is not disabled."""
    return SimError(409, "EnvironmentNotDisabled", f"The environment '{env_id}' is already enabled.")


def key_still_inaccessible(env_id: str, problems: list[str]) -> SimError:
    """400 when re-enabling a locked environment whose policy still cannot use its key."""
    return SimError(
        400,
        "CustomerManagedKeyInaccessible",
        f"The environment '{env_id}' cannot be re-enabled because its enterprise policy cannot access the "
        f"encryption key: {'; '.join(problems)}",
    )
