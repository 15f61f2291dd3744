"""Resource provider tasks: read and register Microsoft.PowerPlatform on the subscription."""

from __future__ import annotations

from prefect import get_run_logger, task

from tasks.context import Services
from tasks.retry import TRANSIENT_RETRY


@task(name="read-provider-state", **TRANSIENT_RETRY)
def read_provider_state(services: Services, namespace: str = "Microsoft.PowerPlatform") -> str:
    """The resource provider's registration state on the subscription (Registered, NotRegistered, ...)."""
    return services.arm.provider_state(namespace)


@task(name="register-provider", **TRANSIENT_RETRY)
def register_provider(services: Services, timeout_seconds: float = 600) -> str:
    """Register Microsoft.PowerPlatform on the subscription and wait until it is Registered."""
    state = services.arm.ensure_provider_registered(
        "Microsoft.PowerPlatform", timeout=timeout_seconds, poll=2
    )
    get_run_logger().info("Microsoft.PowerPlatform is %s.", state)
    return state
