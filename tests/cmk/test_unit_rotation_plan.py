"""The rotation plans: every write decided from the read state, in Microsoft's order, with the preflight findings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cmk.domain.models import CmkLink
from cmk.domain.rows import EnvironmentRow
from cmk.plans.rotation import (
    CREATE_KEY,
    CREATE_KEY_VERSION,
    DEPLOY_POLICY,
    GRANT_KEY_ACCESS,
    GRANT_READER,
    LINK,
    UNLINK,
    KeyVersionState,
    SwapRequest,
    SwapState,
    key_after,
    key_parameters_finding,
    new_policy_conflict_finding,
    new_policy_is_old_finding,
    no_environments_finding,
    not_rotatable,
    not_rotated_finding,
    pinned_version_finding,
    plan_key_version,
    plan_policy_swap,
    policy_problems,
)
from tests.cmk import factories as f

OTHER_VAULT_ID = f.VAULT_ID.replace("kv-cmk-demo", "kv-cmk-new")
NEW_POLICY_ID = f.POLICY_ID.replace("ep-eu", "ep-eu-2")
ADMIN = f.ADMIN


def linked_env(n: int, **kw: Any) -> Any:
    """An environment on the factory policy."""
    fields = {"cmk": f.link(), **kw}
    return f.env(id=f"00000000-0000-0000-0000-0000000e000{n}", display_name=f"Env {n}", **fields)


def codes(findings: Any) -> set[str]:
    return {x.code for x in findings}


# -- findings ---------------------------------------------------------------------------------------------
def test_policy_problems_name_what_makes_a_policy_unrotatable() -> None:
    assert policy_problems(f.policy()) == []
    problems = policy_problems(f.policy(kind="NetworkInjection", key_name=None, system_id=None))
    assert len(problems) == 3 and "NetworkInjection" in problems[0]


def test_a_pinned_key_version_blocks_key_version_rotation() -> None:
    assert pinned_version_finding(f.policy()) == []
    [finding] = pinned_version_finding(f.policy(key_version="v1"))
    assert (finding.code, finding.severity) == ("POLICY_PINS_KEY_VERSION", "blocking")


def test_adopting_a_rotated_version_needs_two_versions() -> None:
    assert not_rotated_finding([f.key(version="v1"), f.key(version="v2")], "https://kv", "cmk") == []
    [finding] = not_rotated_finding([f.key()], "https://kv", "cmk")
    assert finding.code == "KEY_NOT_ROTATED_YET" and finding.target == "https://kv/keys/cmk"


def test_an_existing_new_key_must_match_the_old_keys_type_and_size() -> None:
    assert key_parameters_finding(f.key(), f.key()) == []
    assert key_parameters_finding(None, f.key()) == []
    [finding] = key_parameters_finding(f.key(size=4096), f.key())
    assert finding.code == "KEY_PARAMETERS_DIFFER" and "4096" in finding.message


def test_the_new_policy_must_be_another_policy() -> None:
    assert new_policy_is_old_finding(f.policy(), NEW_POLICY_ID) == []
    [finding] = new_policy_is_old_finding(
        f.policy(), f.POLICY_ID.upper()
    )  # ARM ids compare case-insensitively
    assert finding.code == "NEW_POLICY_IS_OLD"


def test_an_existing_policy_of_the_new_name_is_adopted_only_with_the_new_key() -> None:
    existing = f.policy(id=NEW_POLICY_ID, name="ep-eu-2", key_name="cmk-2")
    assert new_policy_conflict_finding(existing, f.VAULT_ID, "CMK-2") == []
    assert new_policy_conflict_finding(None, f.VAULT_ID, "cmk-2") == []
    assert codes(new_policy_conflict_finding(existing, f.VAULT_ID, "other")) == {"NEW_POLICY_EXISTS"}


def test_a_swap_without_environments_is_refused() -> None:
    assert no_environments_finding(["e1"], f.policy()) == []
    assert codes(no_environments_finding([], f.policy())) == {"NO_ENVIRONMENTS"}


# -- key-version ------------------------------------------------------------------------------------------
def kv_state(**kw: Any) -> KeyVersionState:
    base = KeyVersionState(
        policy=f.policy(),
        vault=f.vault(),
        current=f.key(version="v1"),
        environments=[linked_env(1), linked_env(2), f.env(id="00000000-0000-0000-0000-0000000e0009")],
    )
    return replace(base, **kw)


def test_key_version_plans_one_key_write_and_no_environment_write() -> None:
    kv = plan_key_version(kv_state(), change_id="C1", requested_by="alice", create_new_version=True)
    [write] = kv.plan.writes
    assert (write.service, write.action, write.in_place) == ("keyvault", CREATE_KEY_VERSION, False)
    assert write.target == "https://127.0.0.1:1/keys/cmk" and kv.previous == "v1" and not kv.adopt
    assert [r.environment_id[-1] for r in kv.plan.rows] == ["1", "2"]  # only the policy's environments
    assert all(r.key_before == "kv-cmk-demo/cmk/v1" for r in kv.plan.rows)
    assert kv.plan.blocking == [] and "no environment is written to" in kv.plan.notes[-1]


def test_key_version_adopts_the_version_a_rotation_policy_made() -> None:
    state = kv_state(current=f.key(version="v2"), versions=[f.key(version="v1"), f.key(version="v2")])
    kv = plan_key_version(state, change_id="C1", requested_by="alice", create_new_version=False)
    assert kv.previous == "v1" and kv.adopt and kv.plan.pending == []
    assert "already in place" in kv.plan.writes_markdown() and "rotation policy" in kv.plan.writes_markdown()


def test_key_version_without_a_rotated_version_is_blocked() -> None:
    state = kv_state(versions=[f.key(version="v1")])
    kv = plan_key_version(state, change_id="C1", requested_by="alice", create_new_version=False)
    assert codes(kv.plan.blocking) == {"KEY_NOT_ROTATED_YET"}


def test_key_version_rerun_adopts_the_version_an_earlier_run_made() -> None:
    state = kv_state(current=f.key(version="v2"), recorded_previous="v1")
    kv = plan_key_version(state, change_id="C1", requested_by="alice", create_new_version=True)
    assert kv.previous == "v1" and kv.adopt


def test_key_version_checks_the_vault_the_identity_and_the_pin() -> None:
    state = kv_state(
        policy=f.policy(key_version="v1"), vault=f.vault(access_policies=(), purge_protection=False)
    )
    kv = plan_key_version(state, change_id="C1", requested_by="alice", create_new_version=True, notes=["dup"])
    assert "POLICY_PINS_KEY_VERSION" in codes(kv.plan.blocking)
    assert len(kv.plan.blocking) >= 3 and kv.plan.notes[0] == "dup"


# -- policy-swap ------------------------------------------------------------------------------------------
def request(**kw: Any) -> SwapRequest:
    base = SwapRequest(
        new_policy_name="ep-eu-2",
        new_key_name="cmk-2",
        resource_group="rg-cmk",
        environments=[],
        whole_tenant=False,
        swap_method="link",
        admin_object_id=ADMIN,
    )
    return replace(base, **kw)


def swap_state(**kw: Any) -> SwapState:
    base = SwapState(
        old=f.policy(),
        old_vault=f.vault(),
        new_vault=f.vault(),
        old_key=f.key(),
        new_key=None,
        new_policy=None,
        environments=[linked_env(1), linked_env(2), f.env(id="00000000-0000-0000-0000-0000000e0009")],
    )
    return replace(base, **kw)


def plan_swap(state: SwapState | None = None, req: SwapRequest | None = None) -> Any:
    return plan_policy_swap(state or swap_state(), req or request(), change_id="C1", requested_by="alice")


def test_policy_swap_plans_microsofts_steps_in_order() -> None:
    swap = plan_swap()
    actions = [(w.service, w.action) for w in swap.plan.writes]
    assert actions == [
        ("keyvault", CREATE_KEY),
        ("arm", DEPLOY_POLICY),
        ("arm", GRANT_KEY_ACCESS),  # the vault is shared: one grant
        ("arm", GRANT_READER),
        ("powerplatform", LINK),
        ("powerplatform", LINK),
    ]
    assert swap.plan.writes[1].target.lower() == NEW_POLICY_ID.lower()
    assert swap.plan.writes[0].detail == "RSA 2048" and swap.plan.pending == swap.plan.writes
    assert swap.targets == [linked_env(1).id, linked_env(2).id] and swap.plan.blocking == []
    assert (swap.old_label, swap.new_label) == ("kv-cmk-demo/cmk", "kv-cmk-demo/cmk-2")
    assert all(r.key_before == "kv-cmk-demo/cmk" for r in swap.plan.rows)


def test_policy_swap_to_another_vault_grants_both_vaults_and_unlink_then_link_plans_two_moves() -> None:
    state = swap_state(
        new_vault=f.vault(id=OTHER_VAULT_ID, name="kv-cmk-new", uri="https://kv-new", rbac=True)
    )
    swap = plan_swap(state, request(swap_method="unlink-then-link", admin_object_id=""))
    grants = [w for w in swap.plan.writes if w.action == GRANT_KEY_ACCESS]
    assert [w.target for w in grants] == [OTHER_VAULT_ID, f.VAULT_ID]
    assert "role Key Vault Crypto" in grants[0].detail and "access policy" in grants[1].detail
    assert GRANT_READER not in {w.action for w in swap.plan.writes}
    assert any("Reader" in n for n in swap.plan.notes)
    moves = [(w.action, w.target[-1]) for w in swap.plan.writes if w.service == "powerplatform"]
    assert moves == [(UNLINK, "1"), (LINK, "1"), (UNLINK, "2"), (LINK, "2")]


def test_policy_swap_adopts_an_existing_key_and_policy_in_place() -> None:
    new_policy = f.policy(id=NEW_POLICY_ID, name="ep-eu-2", key_name="cmk-2", system_id="/new")
    moved = linked_env(2, cmk=CmkLink(NEW_POLICY_ID, "/new", "Linked"))
    state = swap_state(
        new_key=f.key(name="cmk-2"),
        new_policy=new_policy,
        environments=[linked_env(1), moved],
        recorded_targets=[linked_env(1).id, moved.id],
    )
    swap = plan_swap(state)
    in_place = {(w.action, w.target) for w in swap.plan.writes if w.in_place}
    assert (CREATE_KEY, "https://127.0.0.1:1/keys/cmk-2") in in_place
    assert (DEPLOY_POLICY, swap.new_policy_id) in in_place and (LINK, moved.id) in in_place
    assert swap.targets == [linked_env(1).id, moved.id] and swap.plan.blocking == []


@pytest.mark.parametrize(
    ("state", "req", "code"),
    [
        (swap_state(new_key=f.key(name="cmk-2", size=4096)), request(), "KEY_PARAMETERS_DIFFER"),
        (swap_state(), request(new_policy_name="ep-eu"), "NEW_POLICY_IS_OLD"),
        (swap_state(environments=[f.env()]), request(), "NO_ENVIRONMENTS"),
        (swap_state(), request(environments=["00000000-0000-0000-0000-00000000dead"]), "ENV_NOT_FOUND"),
        (swap_state(old_key=None), request(), "KEY_NOT_FOUND"),
        (swap_state(new_policy=f.policy(id=NEW_POLICY_ID, name="ep-eu-2")), request(), "NEW_POLICY_EXISTS"),
    ],
)
def test_policy_swap_blocking_findings(state: SwapState, req: SwapRequest, code: str) -> None:
    swap = plan_swap(state, req)
    assert code in codes(swap.plan.blocking), codes(swap.plan.findings)


def test_policy_swap_waits_for_a_busy_environment_instead_of_blocking() -> None:
    busy = linked_env(1, cmk=f.link("Linking"))
    swap = plan_swap(swap_state(environments=[busy]))
    assert swap.plan.blocking == []
    assert "ENV_OPERATION_RUNNING" in {x.code for x in swap.plan.findings if x.severity == "warning"}


def test_whole_tenant_takes_every_cmk_environment_of_the_geo() -> None:
    other = linked_env(3, cmk=CmkLink("/other", "/other-sid", "Linked"))
    us = linked_env(4, location="unitedstates", cmk=CmkLink("/us", "/us-sid", "Linked"))
    swap = plan_swap(swap_state(environments=[linked_env(1), other, us, f.env()]), request(whole_tenant=True))
    assert swap.targets == [linked_env(1).id, other.id]
    assert [r.key_before for r in swap.plan.rows] == [
        "kv-cmk-demo/cmk",
        "",
    ]  # another policy's key: unknown


# -- report -----------------------------------------------------------------------------------------------
LABELS = {
    "new_policy_id": NEW_POLICY_ID,
    "new_label": "kv/new",
    "old_policy_id": f.POLICY_ID,
    "old_label": "kv/old",
}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {
                "status": "succeeded",
                "policy_after": NEW_POLICY_ID.upper(),
                "key_managed_by_after": "Customer",
            },
            ("kv/new", ""),
        ),
        (
            {"status": "succeeded", "policy_after": f.POLICY_ID, "key_managed_by_after": "Customer"},
            ("kv/old", "still on the old policy"),
        ),
        (
            {"status": "failed", "policy_after": NEW_POLICY_ID, "key_managed_by_after": "Microsoft"},
            ("", "on the Microsoft-managed key (its link to"),
        ),
        ({"status": "succeeded", "policy_after": "", "key_managed_by_after": "Microsoft"}, ("", "Microsoft")),
        ({"status": "failed", "policy_after": NEW_POLICY_ID}, ("", "not read back")),
        (
            {"status": "not-started", "policy_before": f.POLICY_ID, "key_before": "kv/old"},
            ("kv/old", "unchanged"),
        ),
        (
            {"status": "succeeded", "policy_after": "/other", "key_managed_by_after": "Customer"},
            ("", "another"),
        ),
    ],
)
def test_key_after_comes_from_the_read_back_policy_not_the_status(
    row: dict[str, Any], expected: tuple[str, str]
) -> None:
    after = key_after(EnvironmentRow.of({"environment_id": "E1", **row}), **LABELS)
    assert after["key_after"] == expected[0]
    assert expected[1] in after["note_after"]


def test_not_rotatable_says_why_in_one_sentence() -> None:
    assert not_rotatable(f.policy(), f.POLICY_ID) == ""
    assert "does not exist" in not_rotatable(
        None, "/subscriptions/s/x"
    ) and "/subscriptions/s/x" in not_rotatable(None, "/subscriptions/s/x")
    assert "not Encryption" in not_rotatable(f.policy(kind="Lockbox"), f.POLICY_ID)
