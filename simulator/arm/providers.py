"""Resource providers and preview features of the subscription, registered over simulated time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.arm import errors
from simulator.arm.policies import POLICY_API_VERSIONS, PP_GEOS
from simulator.core.errors import SimError
from simulator.core.tenant import Tenant

PP_NAMESPACE = "Microsoft.PowerPlatform"
KNOWN_FEATURES = {
    "microsoft.powerplatform/enterprisepoliciespreview": "Microsoft.PowerPlatform/enterprisePoliciesPreview"
}
AZURE_REGIONS = [
    "westeurope",
    "northeurope",
    "eastus",
    "eastus2",
    "westus",
    "westus2",
    "centralus",
    "uksouth",
]
_PROVIDERS: dict[str, list[dict[str, Any]]] = {
    "Microsoft.Resources": [
        {"resourceType": "resourceGroups", "locations": AZURE_REGIONS, "apiVersions": ["2025-04-01"]},
        {
            "resourceType": "deployments",
            "locations": AZURE_REGIONS,
            "apiVersions": ["2026-06-01", "2025-04-01"],
        },
    ],
    "Microsoft.Authorization": [
        {"resourceType": "roleAssignments", "locations": [], "apiVersions": ["2022-04-01"]},
        {"resourceType": "roleDefinitions", "locations": [], "apiVersions": ["2022-04-01"]},
    ],
    "Microsoft.Features": [{"resourceType": "features", "locations": [], "apiVersions": ["2021-07-01"]}],
    "Microsoft.KeyVault": [
        {"resourceType": "vaults", "locations": AZURE_REGIONS, "apiVersions": ["2026-05-15", "2023-07-01"]},
        {"resourceType": "deletedVaults", "locations": [], "apiVersions": ["2026-05-15", "2023-07-01"]},
    ],
    "Microsoft.ManagedIdentity": [
        {"resourceType": "userAssignedIdentities", "locations": AZURE_REGIONS, "apiVersions": ["2023-01-31"]}
    ],
    "Microsoft.Network": [
        {"resourceType": "virtualNetworks", "locations": AZURE_REGIONS, "apiVersions": ["2024-05-01"]}
    ],
    PP_NAMESPACE: [
        {"resourceType": "enterprisePolicies", "locations": PP_GEOS, "apiVersions": POLICY_API_VERSIONS},
        {"resourceType": "operations", "locations": [], "apiVersions": POLICY_API_VERSIONS},
    ],
}
_ALWAYS_REGISTERED = {"microsoft.resources", "microsoft.authorization", "microsoft.features"}


@dataclass
class Registration:
    """A provider or feature registration whose state is computed from simulated time."""

    name: str
    initial_state: str = "NotRegistered"
    started_at: float | None = None

    def state(self, now: float, seconds: float) -> str:
        """NotRegistered (or the seeded state), Registering for `seconds`, then Registered."""
        if self.started_at is None:
            return self.initial_state
        return "Registered" if now - self.started_at >= seconds else "Registering"


class RegistrationBackend:
    """Provider registrations and feature registrations by lower-case name."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.providers: dict[str, Registration] = {}
        self.features: dict[str, Registration] = {}

    def load(self, scenario: dict[str, Any]) -> None:
        """Every known provider and feature in its default state, then the scenario's providers and features."""
        for ns in _PROVIDERS:
            default = (
                "Registered" if ns.lower() in _ALWAYS_REGISTERED or ns != PP_NAMESPACE else "NotRegistered"
            )
            self.providers[ns.lower()] = Registration(ns, default)
        for ns, state in (scenario.get("providers") or {}).items():
            canonical = next((n for n in _PROVIDERS if n.lower() == ns.lower()), ns)
            self.providers[ns.lower()] = Registration(canonical, state)
        for key, canonical in KNOWN_FEATURES.items():
            self.features[key] = Registration(canonical, "NotRegistered")
        for name, state in (scenario.get("features") or {}).items():
            self.features[name.lower()] = Registration(name, state)

    def provider(self, namespace: str) -> Registration:
        """A provider registration, or 404 InvalidResourceNamespace."""
        reg = self.providers.get(namespace.lower())
        if reg is None:
            raise errors.invalid_namespace(namespace)
        return reg

    def provider_state(self, namespace: str) -> str:
        """NotRegistered, Registering or Registered."""
        reg = self.provider(namespace)
        return reg.state(self.tenant.now(), self.tenant.settings.provider_registration_seconds)

    def register_provider(self, namespace: str) -> Registration:
        """Start registration (no-op when registered or registering)."""
        reg = self.provider(namespace)
        if reg.started_at is None and reg.initial_state != "Registered":
            reg.started_at = self.tenant.now()
        return reg

    def provider_json(self, namespace: str) -> dict[str, Any]:
        """The Provider resource."""
        reg = self.provider(namespace)
        types = _PROVIDERS.get(reg.name, [])
        return {
            "id": f"/subscriptions/{self.tenant.subscription_id}/providers/{reg.name}",
            "namespace": reg.name,
            "registrationState": self.provider_state(reg.name),
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [
                {
                    "resourceType": t["resourceType"],
                    "locations": list(t["locations"]),
                    "apiVersions": list(t["apiVersions"]),
                    "capabilities": "None",
                }
                for t in types
            ],
        }

    def feature(self, namespace: str, feature: str) -> Registration:
        """A feature registration, or 404 FeatureNotFound."""
        reg = self.features.get(f"{namespace}/{feature}".lower())
        if reg is None:
            raise SimError(404, "FeatureNotFound", f"The feature '{feature}' could not be found.")
        return reg

    def register_feature(self, namespace: str, feature: str) -> Registration:
        """Start a feature registration."""
        reg = self.feature(namespace, feature)
        if reg.started_at is None and reg.initial_state != "Registered":
            reg.started_at = self.tenant.now()
        return reg

    def feature_json(self, namespace: str, feature: str) -> dict[str, Any]:
        """The FeatureResult resource."""
        reg = self.feature(namespace, feature)
        ns, name = reg.name.split("/", 1)
        return {
            "id": f"/subscriptions/{self.tenant.subscription_id}/providers/Microsoft.Features/providers/{ns}/features/{name}",
            "name": reg.name,
            "type": "Microsoft.Features/providers/features",
            "properties": {
                "state": reg.state(self.tenant.now(), self.tenant.settings.feature_registration_seconds)
            },
        }

    def require_provider_registered(self) -> None:
        """409 MissingSubscriptionRegistration unless Microsoft.PowerPlatform is Registered."""
        if self.provider_state(PP_NAMESPACE) != "Registered":
            raise errors.missing_registration(PP_NAMESPACE)

    def snapshot(self) -> dict[str, Any]:
        """Provider and feature states as JSON."""
        now, settings = self.tenant.now(), self.tenant.settings
        return {
            "providers": {
                r.name: r.state(now, settings.provider_registration_seconds) for r in self.providers.values()
            },
            "features": {
                r.name: r.state(now, settings.feature_registration_seconds) for r in self.features.values()
            },
        }
