"""ARM wire errors with the codes and message shapes real Azure Resource Manager uses."""

from __future__ import annotations

from typing import Any

from simulator.core.errors import SimError


def authorization_failed(object_id: str, action: str, scope: str) -> SimError:
    """403 AuthorizationFailed, worded like ARM."""
    return SimError(
        403,
        "AuthorizationFailed",
        f"The client '{object_id}' with object id '{object_id}' does not have authorization to perform "
        "action "
        f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please "
        "refresh "
        "your credentials.",
    )


def subscription_not_found(subscription_id: str) -> SimError:
    """404 SubscriptionNotFound."""
    return SimError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def resource_group_not_found(name: str) -> SimError:
    """404 ResourceGroupNotFound."""
    return SimError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def resource_not_found(resource_type: str, name: str, resource_group: str) -> SimError:
    """404 ResourceNotFound."""
    return SimError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def invalid_namespace(namespace: str) -> SimError:
    """404 InvalidResourceNamespace."""
    return SimError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")


def missing_registration(namespace: str) -> SimError:
    """409 MissingSubscriptionRegistration (azure-mgmt-core auto-registers on it)."""
    return SimError(409, "MissingSubscriptionRegistration", missing_registration_message(namespace))


def missing_registration_message(namespace: str) -> str:
    """The message ARM gives when a provider is not registered."""
    return (
        f"The subscription is not registered to use namespace '{namespace}'. "
        "See https://aka.ms/rps-not-found for how to register subscriptions."
    )


def no_registered_provider(
    namespace: str, resource_type: str, api_version: str | None, versions: list[str]
) -> SimError:
    """400 NoRegisteredProviderFound for an unsupported api-version."""
    return SimError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location 'global' and API version '{api_version}' for "
        "type "
        f"'{resource_type}'. The supported api-versions are '{', '.join(versions)}'. The supported "
        "locations are "
        "''.",
    )


def missing_api_version() -> SimError:
    """400 MissingApiVersionParameter."""
    return SimError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def invalid_parameter(message: str, target: str | None = None) -> SimError:
    """400 BadRequest with a target, as resource providers answer validation errors."""
    extra: dict[str, Any] = {"target": target} if target else {}
    return SimError(400, "BadRequest", message, extra=extra)


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An {code, message[, details]} error object (for operation status and deployment bodies)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return error
