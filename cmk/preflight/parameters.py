"""Flow parameters checked against Azure's and Power Platform's own rules before any request is made.

Every rule names its source; every refusal says what is wrong and what a valid value looks like. A flow collects
all its refusals with one `Parameters` object and raises them together, so the operator fixes the form once.

Sources:
- Key Vault key names: 1-127 characters of 0-9, a-z, A-Z and '-' (Key Vault "Object identifiers" naming rule;
  the simulator enforces the same pattern).
- Key vault names: 3-24 characters, letters, digits and '-', starting with a letter, ending with a letter or digit,
  no '--' (Azure resource name rules, Microsoft.KeyVault/vaults).
- Resource group names: 1-90 characters, letters or digits (Unicode letters allowed), '_', '-', '.', '(' and ')',
  not ending with '.' (Azure resource name rules, resourcegroups).
- Enterprise policy names: Microsoft documents no rule of its own for Microsoft.PowerPlatform/enterprisePolicies;
  we accept the portable subset of ARM names that every sample uses: 1-64 ASCII letters, digits, '-', '_' and '.',
  starting with a letter or digit and not ending with '.' (a unicode name is refused here instead of failing in
  the template deployment).
- Geos: the Power Platform geos of Microsoft's customer-managed key documentation (2025 list; the 2023 names
  unitedarabemirates and unitedkingdom are accepted as aliases).
- Environment ids, object ids, subscription ids: GUIDs (8-4-4-4-12 hexadecimal digits).
- Key lifetimes: ISO 8601 durations (parsed by isodate). Key Vault's rotation policy rules: expiryTime at least
  28 days, each lifetime-action trigger at least 7 days, a timeBeforeExpiry shorter than the expiry (Key Vault
  "Configure key auto-rotation"; the simulator enforces the same). A Rotate after creation must come before the
  version expires, or the key would expire first and lock every environment on it ("If you set an expiration date
  in your key and the key expired, all the environments that're encrypted with this key will be down", Power
  Platform customer-managed key documentation).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import isodate

from cmk.domain.models import KeyLifetime
from cmk.domain.resource_ids import ResourceRef, parse_policy_id, parse_vault_id
from cmk.errors import ConfigurationError, InvalidResourceIdError
from cmk.state.checkpoints import validate_change_id

GEOS: tuple[str, ...] = (
    "unitedstates",
    "southafrica",
    "uk",
    "japan",
    "india",
    "france",
    "europe",
    "germany",
    "switzerland",
    "canada",
    "brazil",
    "australia",
    "asia",
    "uae",
    "korea",
    "norway",
    "singapore",
    "sweden",
)
GEO_ALIASES = {"unitedarabemirates": "uae", "unitedkingdom": "uk", "southamerica": "brazil"}

_KEY_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_VAULT_NAME = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
_POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EXAMPLE_GUID = "00000000-0000-0000-0000-000000000000"
MAX_WAIT_SECONDS = 7 * 86400  # no lifecycle operation or approval wait we drive is meant to outlast a week


class InvalidParameterError(ConfigurationError):
    """One or more flow parameters break a naming or range rule; nothing was requested."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(problems) == 1:
            message = f"Invalid parameter: {problems[0]}"
        else:
            message = f"{len(problems)} invalid parameters:\n" + "\n".join(f"- {p}" for p in problems)
        super().__init__(message + "\nNothing was read or changed; fix the parameters and run again.")


def _shown(value: object) -> str:
    """A value as the refusal quotes it (short, visible whitespace)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_guid(value: str) -> bool:
    """Whether value is a GUID."""
    return bool(_GUID.match(value or ""))


def canonical_geo(value: str) -> str:
    """A geo in its documented spelling (lower case, aliases resolved)."""
    text = (value or "").replace(" ", "").lower()
    return GEO_ALIASES.get(text, text)


@dataclass
class Parameters:
    """Collects every refusal of one flow's parameters; `done()` raises them together."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def refuse(self, problem: str) -> None:
        """Record one refusal."""
        self.problems.append(problem)

    def done(self) -> None:
        """Raise InvalidParameterError with every refusal, if there is any."""
        if self.problems:
            raise InvalidParameterError(self.problems)

    # -- identities and names ----------------------------------------------------------------------------
    def change_id(self, value: str, name: str = "change_id") -> str:
        """A change id: 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."""
        text = (value or "").strip()
        try:
            validate_change_id(text)
        except ValueError as exc:
            self.refuse(str(exc).replace("change_id", name, 1))
        return text

    def requester(self, value: str, name: str = "requested_by") -> str:
        """Who asks for the change: not empty (they may not approve it)."""
        text = (value or "").strip()
        if not text:
            self.refuse(f"{name} is empty: say who asks for this change (they cannot approve it).")
        elif len(text) > 256:
            self.refuse(f"{name} is {len(text)} characters long; use at most 256 (a name or an email).")
        return text

    def key_name(self, value: str, name: str = "key_name", *, optional: bool = False) -> str:
        """A Key Vault key name: 1-127 of 0-9, a-z, A-Z and '-'."""
        text = value or ""
        if optional and not text:
            return text
        if not _KEY_NAME.match(text):
            self.refuse(
                f"{name} {_shown(value)} is not a Key Vault key name: use 1-127 letters, digits and '-' only "
                "(for example pp-cmk-key)."
            )
        return text

    def policy_name(self, value: str, name: str = "policy_name", *, optional: bool = False) -> str:
        """An enterprise policy name: 1-64 ASCII letters, digits, '-', '_', '.', not ending with '.'."""
        text = value or ""
        if optional and not text:
            return text
        if not _POLICY_NAME.match(text) or text.endswith("."):
            self.refuse(
                f"{name} {_shown(value)} is not a valid enterprise policy name: use 1-64 ASCII letters, digits, "
                "'-', '_' or '.', starting with a letter or digit and not ending with '.' (for example ep-cmk-eu)."
            )
        return text

    def resource_group(self, value: str, name: str = "resource_group", *, optional: bool = False) -> str:
        """A resource group name: 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending with '.'."""
        text = value or ""
        if optional and not text:
            return text
        valid = (
            0 < len(text) <= 90 and all(c.isalnum() or c in "_-.()" for c in text) and not text.endswith(".")
        )
        if not valid:
            self.refuse(
                f"{name} {_shown(value)} is not a resource group name: use 1-90 letters, digits, '_', '-', '.', "
                "'(' or ')', not ending with '.' (for example rg-cmk)."
            )
        return text

    def vault_id(self, value: str, name: str = "vault_id", *, optional: bool = False) -> ResourceRef | None:
        """The ARM id of a Key Vault whose name follows the vault naming rule."""
        if optional and not (value or "").strip():
            return None
        ref = self._resource_id(parse_vault_id, value, name)
        if ref is not None and not _VAULT_NAME.match(ref.name):
            self.refuse(
                f"{name}: the vault name {_shown(ref.name)} is not a Key Vault name (3-24 letters, digits and "
                "'-', starting with a letter, ending with a letter or digit, no '--')."
            )
        if ref is not None and not is_guid(ref.subscription_id):
            self.refuse(f"{name}: the subscription {_shown(ref.subscription_id)} is not a GUID.")
        return ref

    def policy_id(self, value: str, name: str = "policy_id") -> ResourceRef | None:
        """The ARM id of an enterprise policy."""
        ref = self._resource_id(parse_policy_id, value, name)
        if ref is not None:
            self.policy_name(ref.name, f"{name}: the policy name")
        return ref

    def _resource_id(self, parse: Callable[[str], ResourceRef], value: str, name: str) -> ResourceRef | None:
        try:
            return parse(value)
        except InvalidResourceIdError as exc:
            self.refuse(f"{name}: {exc.message}")
            return None

    def geo(self, value: str, name: str = "location") -> str:
        """A Power Platform geo from the documented list."""
        geo = canonical_geo(value)
        if geo not in GEOS:
            self.refuse(
                f"{name} {_shown(value)} is not a Power Platform geo: use one of {', '.join(GEOS)} "
                "(a geo, not an Azure region such as westeurope)."
            )
        return geo

    def guid(self, value: str, name: str, *, optional: bool = False) -> str:
        """A GUID (object id, environment id); empty allowed when optional."""
        text = (value or "").strip()
        if optional and not text:
            return text
        if not is_guid(text):
            self.refuse(f"{name} {_shown(value)} is not a GUID: use the form {EXAMPLE_GUID}.")
        return text

    def environment_ids(self, values: Iterable[str], name: str = "environments") -> list[str]:
        """Environment ids as GUIDs, duplicates removed (with a note), order kept."""
        out: list[str] = []
        seen: dict[str, int] = {}
        bad: list[str] = []
        for raw in values or ():
            text = (raw or "").strip()
            if not is_guid(text):
                bad.append(_shown(raw))
                continue
            key = text.lower()
            if key in seen:
                seen[key] += 1
                continue
            seen[key] = 1
            out.append(text)
        if bad:
            self.refuse(
                f"{name}: {len(bad)} value(s) are not environment ids ({', '.join(bad[:5])}"
                f"{', ...' if len(bad) > 5 else ''}); an environment id is a GUID ({EXAMPLE_GUID}), as shown "
                "in the Power Platform admin center under the environment's details."
            )
        for key, count in seen.items():
            if count > 1:
                self.notes.append(f"{name}: {key} was given {count} times; it is moved once.")
        return out

    # -- durations -----------------------------------------------------------------------------------------
    def duration(
        self, value: str, name: str, *, minimum_days: int, optional: bool = False
    ) -> timedelta | None:
        """A positive ISO 8601 duration (P2Y, P18M, P30D) of at least minimum_days; None when empty and optional."""
        text = (value or "").strip()
        if optional and not text:
            return None
        try:
            parsed = isodate.parse_duration(text)
        except (isodate.ISO8601Error, ValueError):
            self.refuse(
                f"{name} {_shown(value)} is not an ISO 8601 duration: write it as P2Y, P18M, P90D or P1Y6M."
            )
            return None
        span = (
            parsed.totimedelta(start=datetime(2000, 1, 1, tzinfo=UTC))
            if isinstance(parsed, isodate.Duration)
            else parsed
        )
        if span < timedelta(days=minimum_days):
            self.refuse(
                f"{name} {_shown(value)} is shorter than Key Vault's minimum of {minimum_days} days (P{minimum_days}D)."
            )
            return None
        return span

    def key_lifetime(
        self, expires_in: str, rotate_after: str, notify_before_expiry: str
    ) -> KeyLifetime | None:
        """The expiry and rotation policy a flow gives its keys; None (leave them as they are) for no expiry."""
        if not (expires_in or "").strip():
            if (rotate_after or "").strip() or (notify_before_expiry or "").strip():
                self.refuse("key_rotate_after and key_notify_before_expiry need key_expires_in (e.g. P2Y).")
            return None
        expiry = self.duration(expires_in, "key_expires_in", minimum_days=28)
        rotate = self.duration(rotate_after, "key_rotate_after", minimum_days=7, optional=True)
        notify = self.duration(
            notify_before_expiry, "key_notify_before_expiry", minimum_days=7, optional=True
        )
        if expiry is not None and rotate is not None and rotate >= expiry - timedelta(days=7):
            self.refuse(
                f"key_rotate_after {rotate_after!r} must come at least 7 days before the versions expire "
                f"(key_expires_in {expires_in!r}), or a version expires before its successor exists."
            )
        if expiry is not None and notify is not None and notify >= expiry:
            self.refuse(
                f"key_notify_before_expiry {notify_before_expiry!r} must be shorter than key_expires_in {expires_in!r}."
            )
        return KeyLifetime(
            (expires_in or "").strip(),
            (rotate_after or "").strip() or None,
            (notify_before_expiry or "").strip() or None,
        )

    # -- numbers -------------------------------------------------------------------------------------------
    def positive(
        self, value: float, name: str, *, maximum: float | None = None, unit: str = "seconds"
    ) -> float:
        """A number above 0 (and at most maximum)."""
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.refuse(f"{name} must be more than 0 {unit}; got {_shown(value)}.")
        elif maximum is not None and value > maximum:
            self.refuse(f"{name} must be at most {maximum:g} {unit}; got {value:g}.")
        return value

    def timeout(self, value: float, name: str = "operation_timeout_seconds") -> float:
        """A wait in seconds: more than 0 and at most MAX_WAIT_SECONDS (seven days)."""
        return self.positive(value, name, maximum=MAX_WAIT_SECONDS)

    def between(self, value: int, name: str, low: int, high: int, *, hint: str = "") -> int:
        """An integer within [low, high]."""
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.refuse(f"{name} must be a whole number from {low} to {high}; got {_shown(value)}.{hint}")
        return value

    def waves(self, concurrency: int, canary_size: int, failure_threshold: int, max_concurrency: int) -> None:
        """The fan-out bounds every moving flow shares."""
        self.between(concurrency, "concurrency", 1, max_concurrency)
        self.between(canary_size, "canary_size", 0, 1000, hint=" 0 = no canary wave.")
        self.between(failure_threshold, "failure_threshold", 0, 100000, hint=" 0 = never stop.")
