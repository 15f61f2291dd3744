"""Shared plumbing for the azure-sdk clients: constructor kwargs, error translation, correlation capture."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import AzureError

from cmk.clients.settings import AzureSettings
from cmk.errors import correlation_id_from, from_azure_error


def client_kwargs(settings: AzureSettings) -> dict[str, Any]:
    """Transport, retry and polling kwargs every Azure SDK client of the Azure side gets."""
    kwargs: dict[str, Any] = {
        "connection_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "retry_total": settings.retry_total,
    }
    if settings.ca_bundle:
        # Explicit, so CI variables such as REQUESTS_CA_BUNDLE never decide what we trust.
        kwargs["connection_verify"] = settings.ca_bundle
    return kwargs


def mgmt_kwargs(settings: AzureSettings) -> dict[str, Any]:
    """Kwargs for an ARM management client."""
    return {
        **client_kwargs(settings),
        "base_url": settings.arm_endpoint,
        "credential_scopes": [settings.arm_scope],
        "polling_interval": settings.polling_interval,
    }


class CorrelationCapture:
    """A raw_response_hook that remembers the correlation id of the last response it saw."""

    def __init__(self) -> None:
        self.correlation_id: str | None = None

    def __call__(self, pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        request = pipeline_response.http_request
        found = correlation_id_from(response.headers, request.headers)
        if found and self.correlation_id is None:
            self.correlation_id = found


@contextmanager
def translated(action: str, target: str | None) -> Iterator[None]:
    """Turn azure-core exceptions raised inside the block into typed CmkErrors."""
    try:
        yield
    except AzureError as exc:
        raise from_azure_error(exc, action=action, target=target) from exc
