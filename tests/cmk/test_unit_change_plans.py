"""The plans of lock, unlock, retire, migrate_byok and revert: which writes, which are in place, what blocks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmk.domain.models import AccessPolicyInfo
from cmk.domain.roles import CRYPTO_SERVICE_ENCRYPTION_USER
from cmk.domain.rows import EnvironmentRow
from cmk.plans.change import OutsidePlanError
from cmk.plans.lockdown import (
    Grant,
    LockRow,
    grant_present,
    grants_from_journal,
    plan_lock,
    plan_revocation,
    plan_unlock,
)
from cmk.plans.migration import plan_moves, planned_environments
from cmk.plans.retirement import RetirementFacts, assess, plan_retirement
from cmk.preflight import Finding
from cmk.state.key_retirements import Retirement
from cmk.state.policy_retirements import PolicyRetirement
from tests.cmk.factories import NOW, POLICY_ID, PRINCIPAL, VAULT_ID, assignment, env, key, link, policy, vault

OTHER = "99999999-2222-4333-8444-555555555555"
ENV_A, ENV_B = "00000000-0000-0000-0000-0000000e0001", "00000000-0000-0000-0000-0000000e0002"


def access_grant() -> Grant:
    grants, _ = plan_revocation("access_policy", vault(), policy(), [], None)
    return grants[0]


def test_lock_plan_revokes_each_grant_and_refuses_anything_else() -> None:
    grant = access_grant()
    plan = plan_lock("CHG-1", "alice", policy(), "access_policy", [grant], None, [LockRow(ENV_A)])
    assert [(w.service, w.action, w.target) for w in plan.pending] == [
        ("arm", "remove-access-policy", f"{VAULT_ID}/accessPolicies/{PRINCIPAL}")
    ]
    plan.require("remove-access-policy", f"{VAULT_ID}/accessPolicies/{PRINCIPAL}".upper())
    with pytest.raises(OutsidePlanError):
        plan.require("remove-access-policy", f"{VAULT_ID}/accessPolicies/{OTHER}")
    assert plan.rows == [LockRow(ENV_A)] and not plan.blocking


def test_lock_plan_is_blocked_without_writes_when_the_method_cannot_lock() -> None:
    grants, reason = plan_revocation("role_assignment", vault(), policy(), [], None)
    plan = plan_lock("CHG-1", "alice", policy(), "role_assignment", grants, reason, [])
    assert plan.writes == [] and [f.code for f in plan.blocking] == ["LOCK_METHOD_NOT_POSSIBLE"]


def test_a_resumed_lock_plans_its_revocations_as_already_done() -> None:
    plan = plan_lock("CHG-1", "alice", policy(), "access_policy", [access_grant()], None, [], revoked=True)
    assert plan.pending == [] and len(plan.writes) == 1


def test_unlock_plan_restores_what_is_missing_and_re_enables_what_is_offline() -> None:
    grant = access_grant()
    envs = [
        env(id=ENV_A, runtime_state="Disabled", cmk=link()),
        env(id=ENV_B, display_name="HR", runtime_state="Enabled", cmk=link()),
    ]
    plan = plan_unlock(
        "CHG-2", "alice", policy(), POLICY_ID, [grant], [False], envs, [ENV_A, ENV_B, ENV_A], explicit=False
    )
    assert [(w.action, w.target) for w in plan.pending] == [
        ("restore-access-policy", grant.target),
        ("enable-environment", ENV_A),
    ]
    assert [w.target for w in plan.writes if w.in_place] == [ENV_B]
    assert [r.environment_id for r in plan.rows] == [ENV_A, ENV_B]


def test_unlock_plan_blocks_a_missing_policy_a_foreign_grant_and_an_unknown_requested_environment() -> None:
    assert [
        f.code for f in plan_unlock("C", "a", None, POLICY_ID, [], [], [], [], explicit=False).blocking
    ] == ["POLICY_NOT_FOUND"]
    foreign = Grant("access_policy", VAULT_ID, OTHER, ("get",))
    plan = plan_unlock("C", "a", policy(), POLICY_ID, [foreign], [False], [], [ENV_A], explicit=True)
    assert {f.code for f in plan.blocking} == {"GRANT_FOREIGN_IDENTITY", "ENV_NOT_FOUND"}
    lenient = plan_unlock("C", "a", policy(), POLICY_ID, [], [], [], [ENV_A], explicit=False)
    assert lenient.blocking == [] and [f.severity for f in lenient.findings] == ["warning"]


def test_grant_presence_by_method() -> None:
    grant = access_grant()
    assert grant_present(grant, vault(), [], None)
    assert not grant_present(grant, vault(access_policies=()), [], None)
    partial = vault(access_policies=(AccessPolicyInfo(PRINCIPAL, frozenset({"get"})),))
    assert not grant_present(grant, partial, [], None)
    held = assignment(PRINCIPAL, CRYPTO_SERVICE_ENCRYPTION_USER, VAULT_ID)
    role = Grant(
        "role_assignment", VAULT_ID, PRINCIPAL, scope=VAULT_ID, role_definition_id=held.role_definition_id
    )
    assert grant_present(role, vault(rbac=True), [held], None)
    assert not grant_present(role, vault(rbac=True), [], None)
    disabled = Grant(
        "disable_key", VAULT_ID, PRINCIPAL, vault_uri="https://kv", key_name="cmk", key_version="v1"
    )
    assert grant_present(disabled, None, [], key()) and not grant_present(
        disabled, None, [], key(enabled=False)
    )


def test_grants_from_journal_dedupes_and_checks_the_policy() -> None:
    entry = {"target": POLICY_ID, "before": access_grant().to_dict(), "detail": {"blast_radius": [ENV_A]}}
    grants, policy_id, blast = grants_from_journal([entry, entry], "CHG-L")
    assert len(grants) == 1 and policy_id == POLICY_ID and blast == [LockRow(ENV_A)]
    with pytest.raises(ValueError, match="has no revoked access"):
        grants_from_journal([], "CHG-L")
    with pytest.raises(ValueError, match="not /other"):
        grants_from_journal([entry], "CHG-L", "/other")


def _retirements() -> tuple[Retirement, PolicyRetirement]:
    version = Retirement("https://kv", "cmk", "v1", NOW - timedelta(days=1), "CHG-ROT")
    old = PolicyRetirement(
        change_id="CHG-ROT",
        policy_id=POLICY_ID,
        system_id=policy().system_id or "",
        principal_id=PRINCIPAL,
        vault_id=VAULT_ID,
        key_name="cmk",
        new_policy_id=POLICY_ID + "-2",
        new_principal_id=OTHER,
        new_vault_id=VAULT_ID + "-2",
        retire_after=NOW - timedelta(days=1),
        recorded_at=NOW - timedelta(days=31),
    )
    return version, old


def test_retirement_plan_writes_only_for_ready_items() -> None:
    version, old = _retirements()
    facts = RetirementFacts(
        versions={("https://kv", "cmk", "v1"): key(vault_uri="https://kv")},
        latest={("https://kv", "cmk"): "v2"},
        vaults={VAULT_ID.lower(): vault()},  # the old principal has an entry, the new one has none
    )
    items = assess(facts, [version], [old], NOW)
    assert [i["status"] for i in items] == ["ready", "ready"]
    plan = plan_retirement("CHG-R", "alice", items, facts)
    assert [(w.action, w.target) for w in plan.pending] == [
        ("disable-key-version", "https://kv/keys/cmk/v1"),
        ("delete-policy", POLICY_ID),
        ("remove-access-policy", f"{VAULT_ID}/accessPolicies/{PRINCIPAL}"),
    ]
    assert [w.target for w in plan.writes if w.in_place] == [f"{VAULT_ID}/accessPolicies/{OTHER}"]

    facts.latest[("https://kv", "cmk")] = "v1"  # now the current version
    facts.environments = [env(cmk=link())]  # and an environment depends on the old policy
    refused = plan_retirement("CHG-R", "alice", assess(facts, [version], [old], NOW), facts)
    assert refused.writes == [] and [f.code for f in refused.findings] == ["RETIREMENT_REFUSED"] * 2


def test_retirement_on_an_rbac_vault_deletes_only_the_encryption_role_at_vault_scope() -> None:
    _, old = _retirements()
    keep = assignment(PRINCIPAL, "acdd72a7-3385-48ef-bd42-f606fba81ae7", VAULT_ID)
    drop = assignment(PRINCIPAL, CRYPTO_SERVICE_ENCRYPTION_USER, VAULT_ID)
    facts = RetirementFacts(
        vaults={VAULT_ID.lower(): vault(rbac=True)},
        role_assignments={(VAULT_ID.lower(), PRINCIPAL): [keep, drop]},
    )
    plan = plan_retirement("CHG-R", "alice", assess(facts, [], [old], NOW), facts)
    assert [(w.action, w.target) for w in plan.pending] == [
        ("delete-policy", POLICY_ID),
        ("delete-role-assignment", drop.id),
    ]


def test_migration_and_revert_plans_move_each_row_once() -> None:
    rows = [EnvironmentRow(ENV_A, name="Finance"), EnvironmentRow(ENV_B, name="HR")]
    blocking = Finding("X", "blocking", ENV_B, "m", "r")
    plan = plan_moves(
        "migrate_byok", "link", "C", "alice", rows, [Finding("I", "info", ENV_A, "m", "r"), blocking]
    )
    assert planned_environments(plan, "link") == [ENV_A, ENV_B] and plan.blocking == [blocking]
    assert plan.findings[0] is blocking  # sorted: blocking first
    revert = plan_moves(
        "revert", "unlink", "C", "alice", rows, [], ["environments: x was given 2 times; it is moved once."]
    )
    assert planned_environments(revert, "unlink") == [ENV_A, ENV_B]
    assert planned_environments(revert, "link") == [] and "given 2 times" in revert.notes_markdown()
