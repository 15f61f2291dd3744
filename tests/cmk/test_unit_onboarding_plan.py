"""The onboarding plan from model objects: every write in Microsoft's order, what is in place, the findings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cmk.domain.models import KeyLifetime, RotationPolicyInfo
from cmk.domain.roles import CRYPTO_SERVICE_ENCRYPTION_USER, READER
from cmk.plans.onboarding import (
    CREATE_KEY,
    DEPLOY_POLICY,
    GRANT_KEY_ACCESS,
    GRANT_READER,
    LINK,
    MAKE_MANAGED,
    REGISTER_PROVIDER,
    SET_ROTATION_POLICY,
    OnboardingRequest,
    OnboardingState,
    onboarding_request,
    plan_from_dict,
    plan_onboarding,
    plan_to_dict,
    planned_links,
    planned_managed,
)
from cmk.preflight.parameters import InvalidParameterError
from tests.cmk import factories as f

E1 = "00000000-0000-0000-0000-0000000e0001"
E2 = "00000000-0000-0000-0000-0000000e0002"


def request(**kw: Any) -> OnboardingRequest:
    base = OnboardingRequest(
        change_id="CHG-1",
        requested_by="alice",
        vault_id=f.VAULT_ID,
        policy_name="ep-eu",
        resource_group="rg-cmk",
        location="europe",
        key_name="cmk",
        admin_object_id=f.ADMIN,
    )
    return replace(base, **kw)


def fresh(**kw: Any) -> OnboardingState:
    """Nothing of the onboarding exists yet: provider unregistered, no key, no policy."""
    base = OnboardingState(
        policy_id=f.POLICY_ID,
        vault=f.vault(access_policies=()),
        key=None,
        policy=None,
        provider_state="NotRegistered",
        environments=[f.env(), f.env(id=E2, display_name="Sales")],
    )
    return replace(base, **kw)


def done() -> OnboardingState:
    """Everything of the onboarding but the links exists already."""
    return fresh(
        key=f.key(),
        rotation=RotationPolicyInfo("P2Y", rotate_after_create="P18M", notify_before_expiry="P30D"),
        policy=f.policy(),
        vault=f.vault(),
        provider_state="Registered",
        reader_grants=[f.assignment(f.ADMIN, READER, f.POLICY_ID)],
    )


def codes(plan: Any, severity: str | None = None) -> list[str]:
    return [x.code for x in plan.findings if severity is None or x.severity == severity]


def test_a_fresh_onboarding_plans_every_write_in_microsofts_order() -> None:
    plan = plan_onboarding(request(), fresh(), f.NOW)
    assert [(w.action, w.target) for w in plan.pending] == [
        (REGISTER_PROVIDER, "Microsoft.PowerPlatform"),
        (CREATE_KEY, "https://127.0.0.1:1/keys/cmk"),
        (SET_ROTATION_POLICY, "https://127.0.0.1:1/keys/cmk"),
        (DEPLOY_POLICY, f.POLICY_ID),
        (GRANT_KEY_ACCESS, f.VAULT_ID),
        (GRANT_READER, f.POLICY_ID),
        (LINK, E1),
        (LINK, E2),
    ]
    assert plan.writes == plan.pending
    assert plan.blocking == [] and "KEY_WILL_BE_CREATED" in codes(plan, "info")
    assert [r.environment_id for r in plan.rows] == [E1, E2] and planned_links(plan) == [E1, E2]
    assert any("systemId and managed identity do not exist yet" in n for n in plan.notes)
    assert "expires after P2Y" in plan.writes[1].detail
    assert (
        plan.writes[2].detail
        == "versions expire after P2Y; Rotate P18M after creation; Notify P30D before expiry"
    )
    assert "access policy get/wrapKey/unwrapKey" in plan.writes[4].detail


def test_what_exists_already_is_in_place_and_only_the_links_remain() -> None:
    plan = plan_onboarding(request(), done(), f.NOW)
    assert [w.action for w in plan.pending] == [LINK, LINK]
    assert [w.action for w in plan.writes if w.in_place] == [
        REGISTER_PROVIDER,
        CREATE_KEY,
        SET_ROTATION_POLICY,
        DEPLOY_POLICY,
        GRANT_KEY_ACCESS,
        GRANT_READER,
    ]
    assert plan.blocking == []
    assert not any("do not exist yet" in n for n in plan.notes)
    assert any(f.policy().system_id in n for n in plan.notes)


def test_an_existing_key_of_another_size_blocks_and_is_never_recreated() -> None:
    plan = plan_onboarding(request(), fresh(key=f.key(size=4096)), f.NOW)
    assert {"KEY_PARAMETERS_DIFFER", "KEY_SIZE_UNSUPPORTED"} <= set(codes(plan, "blocking"))
    assert not plan.permits(CREATE_KEY, "https://127.0.0.1:1/keys/cmk")


def test_an_adopted_key_that_expires_soon_blocks() -> None:
    from datetime import timedelta

    plan = plan_onboarding(request(), fresh(key=f.key(expires_on=f.NOW + timedelta(days=3))), f.NOW)
    assert "KEY_EXPIRING_SOON" in codes(plan, "blocking")


@pytest.mark.parametrize(
    ("vault_kw", "code"),
    [
        ({"soft_delete": False}, "VAULT_SOFT_DELETE_OFF"),
        ({"purge_protection": False}, "VAULT_PURGE_PROTECTION_OFF"),
    ],
)
def test_vault_protection_off_blocks(vault_kw: dict[str, Any], code: str) -> None:
    plan = plan_onboarding(request(), fresh(vault=f.vault(**vault_kw)), f.NOW)
    assert code in codes(plan, "blocking")


def test_a_missing_vault_blocks_and_plans_no_key() -> None:
    plan = plan_onboarding(request(), fresh(vault=None), f.NOW)
    assert "VAULT_NOT_FOUND" in codes(plan, "blocking")
    assert CREATE_KEY not in [w.action for w in plan.writes]
    assert GRANT_KEY_ACCESS not in [w.action for w in plan.writes]


def test_an_rbac_vault_plans_the_role_and_sees_it_in_place() -> None:
    rbac = f.vault(rbac=True, access_policies=())
    plan = plan_onboarding(request(), fresh(vault=rbac), f.NOW)
    grant = next(w for w in plan.writes if w.action == GRANT_KEY_ACCESS)
    assert grant.service == "arm" and "Key Vault Crypto Service Encryption User" in grant.detail
    assert not grant.in_place

    held = f.assignment(f.PRINCIPAL, CRYPTO_SERVICE_ENCRYPTION_USER, f.VAULT_ID)
    state = replace(done(), vault=rbac, key_access=[held])
    grant = next(w for w in plan_onboarding(request(), state, f.NOW).writes if w.action == GRANT_KEY_ACCESS)
    assert grant.in_place


def test_an_existing_policy_for_another_key_blocks() -> None:
    plan = plan_onboarding(request(), replace(done(), policy=f.policy(key_name="other")), f.NOW)
    assert "POLICY_EXISTS_DIFFERENT" in codes(plan, "blocking")


def test_without_an_admin_object_id_no_reader_grant_is_planned() -> None:
    plan = plan_onboarding(request(admin_object_id=""), fresh(), f.NOW)
    assert GRANT_READER not in [w.action for w in plan.writes]
    assert "READER_ADMIN_UNKNOWN" in codes(plan, "warning") and plan.blocking == []


def test_requested_environments_are_checked_for_geo_sku_and_existence() -> None:
    us = f.env(id=E2, location="unitedstates")
    trial = f.env(id="00000000-0000-0000-0000-0000000e0003", sku="Trial")
    unknown = "00000000-0000-0000-0000-0000000e0009"
    state = fresh(environments=[f.env(), us, trial])
    plan = plan_onboarding(request(environments=(E1, E2, trial.id, unknown)), state, f.NOW)
    blocking = {(x.code, x.target) for x in plan.blocking}
    assert blocking == {
        ("ENV_GEO_MISMATCH", E2),
        ("ENV_SKU_NOT_ALLOWED", trial.id),
        ("ENV_NOT_FOUND", unknown),
    }


def test_no_eligible_environment_blocks() -> None:
    plan = plan_onboarding(request(), fresh(environments=[f.env(location="asia")]), f.NOW)
    assert "NO_ENVIRONMENTS" in codes(plan, "blocking") and planned_links(plan) == []


def test_the_plan_survives_its_checkpoint() -> None:
    plan = plan_onboarding(request(), fresh(), f.NOW)
    again = plan_from_dict(plan_to_dict(plan))
    assert again is not None
    assert again.writes == plan.writes and again.rows == plan.rows and again.findings == plan.findings
    assert plan_from_dict({"environments": [E1]}) is None  # a checkpoint of an older run has no plan


def valid(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "change_id": "CHG-1",
        "requested_by": "alice",
        "vault_id": f.VAULT_ID,
        "policy_name": "ep-eu",
        "resource_group": "rg-cmk",
        "location": "Europe",
        "key_name": "cmk",
        "key_type": "RSA",
        "key_size": 2048,
        "environments": [E1, E1.upper(), E2],
        "admin_object_id": "",
        "operation_timeout_seconds": 3600,
        "concurrency": 4,
        "canary_size": 1,
        "failure_threshold": 1,
    }
    return {**base, **kw}


def test_the_request_is_canonical_with_duplicates_noted() -> None:
    req = onboarding_request(**valid())
    assert req.location == "europe" and req.environments == (E1, E2)
    assert len(req.notes) == 1 and E1 in req.notes[0]


def test_every_refusal_is_raised_together() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        onboarding_request(
            **valid(key_name="my key", policy_name="ep-ü", operation_timeout_seconds=0, concurrency=0)
        )
    text = str(caught.value)
    assert "4 invalid parameters" in text
    assert "key_name" in text and "policy_name" in text and "operation_timeout_seconds" in text
    assert "concurrency" in text


def test_an_adopted_key_with_another_rotation_policy_gets_the_asked_one() -> None:
    plan = plan_onboarding(
        request(), replace(done(), rotation=RotationPolicyInfo(None, notify_before_expiry="P30D"))
    )
    assert plan.permits(SET_ROTATION_POLICY, "https://127.0.0.1:1/keys/cmk")
    assert not plan.permits(CREATE_KEY, "https://127.0.0.1:1/keys/cmk")


def test_no_rotate_action_when_asked_for_none() -> None:
    plan = plan_onboarding(request(lifetime=KeyLifetime("P1Y", None, "P30D")), fresh())
    write = next(w for w in plan.writes if w.action == SET_ROTATION_POLICY)
    assert write.detail == "versions expire after P1Y; no Rotate; Notify P30D before expiry"


@pytest.mark.parametrize(
    ("lifetime", "problem"),
    [
        ({"key_expires_in": "2 years"}, "key_expires_in '2 years' is not an ISO 8601 duration"),
        ({"key_expires_in": "P10D"}, "key_expires_in 'P10D' is shorter than Key Vault's minimum of 28 days"),
        ({"key_rotate_after": "P3D"}, "key_rotate_after 'P3D' is shorter than Key Vault's minimum of 7 days"),
        (
            {"key_rotate_after": "P2Y"},
            "key_rotate_after 'P2Y' must come at least 7 days before the versions expire",
        ),
        (
            {"key_notify_before_expiry": "P3Y"},
            "key_notify_before_expiry 'P3Y' must be shorter than key_expires_in",
        ),
        ({"key_notify_before_expiry": "-P30D"}, "key_notify_before_expiry '-P30D' is shorter"),
    ],
)
def test_key_lifetimes_are_checked_before_any_request(lifetime: dict[str, str], problem: str) -> None:
    with pytest.raises(InvalidParameterError) as refused:
        onboarding_request(**valid(**lifetime))
    assert any(problem in p for p in refused.value.problems), refused.value.problems


def test_the_default_lifetime_is_microsofts_advice() -> None:
    lifetime = onboarding_request(**valid()).lifetime
    assert lifetime == KeyLifetime("P2Y", "P18M", "P30D")
    assert lifetime.expires_on(f.NOW).year == f.NOW.year + 2


E3 = "00000000-0000-0000-0000-0000000e0003"


def with_unmanaged() -> OnboardingState:
    return fresh(environments=[f.env(), f.env(id=E2, display_name="Sales"), f.env(id=E3, managed=False)])


def test_a_non_managed_environment_blocks_unless_it_is_made_managed() -> None:
    blocked = plan_onboarding(request(environments=(E1, E3)), with_unmanaged())
    assert "ENV_NOT_MANAGED" in codes(blocked, "blocking")
    plan = plan_onboarding(request(environments=(E1, E3), make_managed=(E3,)), with_unmanaged())
    assert plan.blocking == []
    assert planned_managed(plan) == [E3] and planned_links(plan) == [E1, E3]
    actions = [w.action for w in plan.pending]
    assert actions.index(MAKE_MANAGED) < actions.index(LINK)


def test_without_environments_the_made_managed_one_is_eligible_too() -> None:
    plan = plan_onboarding(request(make_managed=(E3,)), with_unmanaged())
    assert planned_links(plan) == [E1, E2, E3] and planned_managed(plan) == [E3]


def test_an_already_managed_environment_is_in_place() -> None:
    plan = plan_onboarding(request(environments=(E1,), make_managed=(E1,)), with_unmanaged())
    assert planned_managed(plan) == [] and any(w.action == MAKE_MANAGED and w.in_place for w in plan.writes)


def test_make_managed_must_name_a_linked_environment() -> None:
    plan = plan_onboarding(request(environments=(E1,), make_managed=(E3,)), with_unmanaged())
    assert "MAKE_MANAGED_NOT_LINKED" in codes(plan, "blocking")


def test_make_managed_ids_are_validated() -> None:
    with pytest.raises(InvalidParameterError) as refused:
        onboarding_request(**valid(make_managed=["not-a-guid"]))
    assert "make_managed" in str(refused.value)
