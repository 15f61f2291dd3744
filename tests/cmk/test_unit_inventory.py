"""Pure inventory rules: journal replay, the retirement register, and edge cases of the risk checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cmk.domain.models import AccessPolicyInfo, CmkLink, EnvironmentInfo, VaultInfo
from cmk.inventory.drift import expected_grants, find_drift
from cmk.inventory.report import assess
from cmk.inventory.snapshot import TenantSnapshot, is_locked
from cmk.state.key_retirements import Retirement, RetirementRegister

VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def env(env_id: str, **kw: object) -> EnvironmentInfo:
    """A managed production environment in europe, overridable."""
    values: dict[str, object] = {
        "id": env_id,
        "display_name": env_id,
        "location": "europe",
        "azure_region": "westeurope",
        "sku": "Production",
        "managed": True,
        "runtime_state": "Enabled",
        "management_state": "Ready",
        "key_managed_by": "Microsoft",
    }
    values.update(kw)
    return EnvironmentInfo(**values)  # type: ignore[arg-type]


def vault(*policies: AccessPolicyInfo) -> VaultInfo:
    """An access-policy vault with the given entries."""
    return VaultInfo(VAULT, "kv", "https://kv", "rg", True, 90, True, False, access_policies=policies)


def test_journal_replay_keeps_the_last_successful_word_per_grant() -> None:
    entries = [
        {
            "action": "keyvault.access_policy.add",
            "target": VAULT,
            "after": {"object_id": "A", "keys": ["get"]},
        },
        {"action": "keyvault.access_policy.remove", "target": VAULT, "before": {"object_id": "a"}},
        {
            "action": "keyvault.access_policy.add",
            "target": VAULT,
            "after": {"object_id": "B", "keys": ["get"]},
        },
        {
            "action": "keyvault.access_policy.remove",
            "target": VAULT,
            "before": {"object_id": "B"},
            "outcome": "failed",
        },
        {"action": "bap.link.start", "target": "env-1", "after": {}},
    ]
    grants = {g.principal_id.lower(): g.present for g in expected_grants(entries)}
    assert grants == {"a": False, "b": True}


def test_drift_compares_permissions_not_just_presence() -> None:
    grants = expected_grants(
        [
            {
                "action": "keyvault.access_policy.add",
                "target": VAULT,
                "after": {"object_id": "A", "keys": ["get", "wrapkey", "unwrapkey"]},
            }
        ]
    )
    short = vault(AccessPolicyInfo("A", frozenset({"get"})))
    drift = find_drift(grants, {VAULT.lower(): short}, {})
    assert len(drift) == 1 and drift[0].missing and "unwrapkey, wrapkey" in drift[0].detail
    full = vault(AccessPolicyInfo("A", frozenset({"all"})))
    assert find_drift(grants, {VAULT.lower(): full}, {}) == []


def test_register_replaces_a_version_and_refuses_a_malformed_file(tmp_path: Path) -> None:
    register = RetirementRegister(tmp_path / "key-retirements.json")
    assert register.entries() == []
    register.record(Retirement("https://kv/", "k", "v1", NOW, "CHG-1"))
    register.record(Retirement("https://kv", "k", "V1", NOW + timedelta(days=1), "CHG-2"))
    [entry] = register.entries()
    assert entry.change_id == "CHG-2" and entry.vault_uri == "https://kv"
    register.path.write_text("{not json")
    with pytest.raises(ValueError, match="key-retirements.json is not a valid"):
        register.entries()


def test_locked_means_disabled_for_a_key_reason_only() -> None:
    link = CmkLink("/p", "/regions/europe/p", "Linked")
    assert is_locked(
        env("a", cmk=link, runtime_state="Disabled", runtime_reason="CustomerManagedKeyInaccessible")
    )
    assert not is_locked(env("b", cmk=link, runtime_state="Disabled", runtime_reason="AdminDisabled"))
    assert not is_locked(env("c", runtime_state="Disabled", runtime_reason="Whatever"))  # no customer key


def test_geo_coverage_ignores_unmanaged_trial_and_teams() -> None:
    snapshot = TenantSnapshot(
        environments=[
            env("trial", sku="Trial", location="asia"),
            env("teams", sku="Teams", location="asia"),
            env("basic", managed=False, location="asia"),
            env("prod-uk", location="uk"),
        ],
        policies=[],
    )
    report = assess(snapshot, NOW)
    assert [(r.code, r.target, r.environments) for r in report.risks] == [
        ("geo-without-policy", "uk", ("prod-uk",))
    ]
    assert report.worst() == "low"
