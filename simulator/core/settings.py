"""Tunable behaviour of the simulated services (durations are in simulated seconds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from simulator.core.errors import SimError


@dataclass
class SimSettings:
    """Every knob a scenario or the control plane may set."""

    # ARM
    provider_registration_seconds: float = 2.0
    feature_registration_seconds: float = 2.0
    vault_create_seconds: float = 1.0
    deployment_seconds: float = 1.0
    policy_identity_delay_seconds: float = 0.0  # identity.principalId appears this long after creation
    lro_retry_after: int = 1  # Retry-After on ARM status responses
    # Power Platform (BAP)
    link_seconds: float = 6.0
    unlink_seconds: float = 6.0
    governance_seconds: float = 2.0
    reenable_seconds: float = 2.0
    operation_retry_after: int = 1  # Retry-After on BAP 202s and poll responses
    lock_detection_seconds: float = 5.0  # unhealthy policy -> environments disabled after this
    bap_page_size: int = 100
    bap_rate_per_second: float = 0.0  # 0 disables the per-caller limit
    bap_rate_burst: int = 100
    arm_rate_per_second: float = 0.0
    arm_rate_burst: int = 200

    def update(self, values: dict[str, Any]) -> None:
        """Set the given knobs; unknown names or wrong types are refused."""
        known = {f.name: f for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise SimError(
                    400, "InvalidSetting", f"Unknown simulator setting '{name}'. Known: {sorted(known)}."
                )
            current = getattr(self, name)
            try:
                setattr(self, name, type(current)(value))
            except (TypeError, ValueError) as exc:
                raise SimError(
                    400, "InvalidSetting", f"Setting '{name}' must be a {type(current).__name__}."
                ) from exc

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON."""
        return asdict(self)
