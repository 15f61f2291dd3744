"""Key checks: type, size, enabled, active, not expired and not expiring within the margin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cmk.domain.models import KeyInfo
from cmk.preflight.findings import Finding

SUPPORTED_KTY = frozenset({"RSA", "RSA-HSM"})
SUPPORTED_SIZES = frozenset({2048, 3072})


def check_key(
    key: KeyInfo | None, now: datetime | None = None, expiry_margin_days: int = 30, key_ref: str = ""
) -> list[Finding]:
    """The key exists, is RSA/RSA-HSM 2048/3072, enabled, active and not expiring within the margin."""
    if key is None:
        return [
            Finding(
                "KEY_NOT_FOUND",
                "blocking",
                key_ref,
                "The key (or the pinned key version) does not exist in the vault.",
                "Create the key (RSA 2048 or 3072) or fix the key name/version in the policy.",
            )
        ]
    now = now or datetime.now(UTC)
    target = key.kid or f"{key.vault_uri}/keys/{key.name}"
    out: list[Finding] = []
    if key.kty not in SUPPORTED_KTY:
        out.append(
            Finding(
                "KEY_TYPE_UNSUPPORTED",
                "blocking",
                target,
                f"Key type {key.kty} is not supported; Power Platform needs RSA or RSA-HSM.",
                "Create a new RSA or RSA-HSM key and use it for the policy.",
            )
        )
    if key.size not in SUPPORTED_SIZES:
        out.append(
            Finding(
                "KEY_SIZE_UNSUPPORTED",
                "blocking",
                target,
                f"Key size {key.size} bits is not supported; Power Platform needs 2048 or 3072.",
                "Create a new 2048- or 3072-bit RSA key and use it for the policy.",
            )
        )
    if not key.enabled:
        out.append(
            Finding(
                "KEY_DISABLED",
                "blocking",
                target,
                f"Key version {key.version} is disabled.",
                "Enable the key version, or point the policy at an enabled version.",
            )
        )
    if key.not_before and key.not_before > now:
        out.append(
            Finding(
                "KEY_NOT_ACTIVE",
                "blocking",
                target,
                f"Key version {key.version} is not active before {key.not_before.isoformat()}.",
                "Wait until the activation date or clear the key's not-before date.",
            )
        )
    if key.expires_on and key.expires_on <= now:
        out.append(
            Finding(
                "KEY_EXPIRED",
                "blocking",
                target,
                f"Key version {key.version} expired on {key.expires_on.isoformat()}; linked "
                "environments go down.",
                "Extend the expiry date or create a new key version before linking.",
            )
        )
    elif key.expires_on and key.expires_on <= now + timedelta(days=expiry_margin_days):
        out.append(
            Finding(
                "KEY_EXPIRING_SOON",
                "blocking",
                target,
                f"Key version {key.version} expires on {key.expires_on.isoformat()}, within the "
                f"{expiry_margin_days}-day margin.",
                "Extend the expiry date or rotate to a new key version first.",
            )
        )
    return out
