"""Resource groups of the one subscription, and the scopes ARM builds from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.arm import errors
from simulator.core.errors import SimError
from simulator.core.tenant import Tenant


@dataclass
class ResourceGroup:
    """A resource group."""

    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)

    def to_json(self, subscription_id: str) -> dict[str, Any]:
        """The ResourceGroup resource."""
        return {
            "id": f"/subscriptions/{subscription_id}/resourceGroups/{self.name}",
            "name": self.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.location,
            "tags": dict(self.tags),
            "properties": {"provisioningState": "Succeeded"},
        }


class ResourceGroupBackend:
    """The subscription's resource groups by lower-case name."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.resource_groups: dict[str, ResourceGroup] = {}

    def load(self, scenario: dict[str, Any]) -> None:
        """Seed from the scenario's resource_groups."""
        for spec in scenario.get("resource_groups") or []:
            rg = ResourceGroup(spec["name"], spec.get("location", "westeurope"), dict(spec.get("tags") or {}))
            self.resource_groups[rg.name.lower()] = rg

    def check_subscription(self, subscription_id: str) -> None:
        """A 404 SubscriptionNotFound for any other subscription id."""
        if subscription_id.lower() != self.tenant.subscription_id.lower():
            raise errors.subscription_not_found(subscription_id)

    def subscription_scope(self) -> str:
        """/subscriptions/{sub}."""
        return f"/subscriptions/{self.tenant.subscription_id}"

    def rg_scope(self, name: str) -> str:
        """/subscriptions/{sub}/resourceGroups/{rg} with the group's own casing when it exists."""
        rg = self.resource_groups.get(name.lower())
        return f"{self.subscription_scope()}/resourceGroups/{rg.name if rg else name}"

    def get_resource_group(self, name: str) -> ResourceGroup:
        """The group, or 404 ResourceGroupNotFound."""
        rg = self.resource_groups.get(name.lower())
        if rg is None:
            raise errors.resource_group_not_found(name)
        return rg

    def put_resource_group(self, name: str, body: dict[str, Any]) -> tuple[ResourceGroup, bool]:
        """Create or update a group; returns (group, created)."""
        location = body.get("location") if isinstance(body, dict) else None
        if not location:
            raise SimError(400, "LocationRequired", "The location property is required for this definition.")
        existing = self.resource_groups.get(name.lower())
        if existing is not None:
            if existing.location.replace(" ", "").lower() != str(location).replace(" ", "").lower():
                raise SimError(
                    409,
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{location}'. The Resource group already exists in "
                    "location "
                    f"'{existing.location}'.",
                )
            if "tags" in body:
                existing.tags = dict(body.get("tags") or {})
            return existing, False
        if len(name) > 90 or name.endswith("."):
            raise SimError(
                400,
                "InvalidResourceGroup",
                f"The provided resource group name '{name}' has these invalid characters or length.",
            )
        rg = ResourceGroup(name, str(location), dict(body.get("tags") or {}))
        self.resource_groups[name.lower()] = rg
        return rg, True
