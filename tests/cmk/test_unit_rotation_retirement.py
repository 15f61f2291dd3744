"""Unit tests: grace dates, the policy retirement register and the retirement refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cmk.domain import grace
from cmk.domain.models import CmkLink, EnvironmentInfo
from cmk.plans.retirement import key_version_blockers, policy_blockers
from cmk.state.policy_retirements import PolicyRetirement, PolicyRetirementRegister

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def entry(retire_after: datetime, policy_id: str = "/subscriptions/s/resourceGroups/rg/providers/"
          "Microsoft.PowerPlatform/enterprisePolicies/ep-old") -> PolicyRetirement:  # fmt: skip
    return PolicyRetirement(
        change_id="CHG-1", policy_id=policy_id, system_id="/regions/europe/x/OLD", principal_id="p-old",
        vault_id="/v/old", key_name="k", new_policy_id="/p/new", new_principal_id="p-new",
        new_vault_id="/v/new", retire_after=retire_after, recorded_at=T0,
    )  # fmt: skip


def env(env_id: str, system_id: str | None, status: str = "Linked") -> EnvironmentInfo:
    return EnvironmentInfo(
        id=env_id, display_name=env_id, location="europe", azure_region=None, sku="Production", managed=True,
        runtime_state="Enabled", management_state="Ready", key_managed_by="Customer",
        cmk=CmkLink("/p", system_id, status) if system_id else None,
    )  # fmt: skip


def test_grace_dates_are_utc_and_never_negative() -> None:
    assert grace.retire_after(T0, 28) == T0 + timedelta(days=28)
    assert grace.retire_after(T0.replace(tzinfo=None), 30).tzinfo is not None
    with pytest.raises(ValueError):
        grace.retire_after(T0, -1)


def test_key_version_refused_inside_grace_when_current_or_pinned() -> None:
    until = grace.retire_after(T0, 28)
    inside = key_version_blockers("v1", until, T0 + timedelta(days=27), latest_version="v2")
    assert len(inside) == 1 and "grace period runs until" in inside[0] and "1 day" in inside[0]
    assert key_version_blockers("v1", until, until, latest_version="v2") == []
    current = key_version_blockers("v2", until, until + timedelta(days=1), latest_version="V2")
    assert current and "current version" in current[0]
    pinned = key_version_blockers("v1", until, until, latest_version="v2", pinning_policies=["ep-a"])
    assert pinned == ["enterprise policy ep-a pins this version"]


def test_policy_refused_while_any_environment_depends_on_it() -> None:
    item = entry(grace.retire_after(T0, 30))
    after = T0 + timedelta(days=31)
    envs = [env("a", "/regions/europe/x/old"), env("b", "/regions/europe/x/old", "Unlinking"), env("c", None)]
    reasons = policy_blockers(item, after, envs)
    assert reasons == ["2 environment(s) still depend on it: a (a, Linked), b (b, Unlinking)"]
    assert policy_blockers(item, after, [env("c", "/regions/europe/x/new")]) == []
    assert "grace period" in policy_blockers(item, T0 + timedelta(days=29), [])[0]


def test_register_keeps_the_later_date_and_marks_retired(tmp_path: Path) -> None:
    register = PolicyRetirementRegister(tmp_path / "policy-retirements.json")
    first = register.record(entry(T0 + timedelta(days=30)))
    shorter = register.record(entry(T0 + timedelta(days=10)))
    assert shorter.retire_after == first.retire_after  # a re-run never shortens the grace
    longer = register.record(entry(T0 + timedelta(days=40)))
    assert longer.retire_after == T0 + timedelta(days=40)
    retired = register.mark_retired(first.policy_id.upper(), by="bob", change_id="CHG-R", at=T0)
    assert retired.retired and register.find(first.policy_id).retired_by == "bob"
    assert len(register.entries()) == 1
    (tmp_path / "policy-retirements.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid policy retirement register"):
        register.entries()
