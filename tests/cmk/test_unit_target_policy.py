"""The rules of a policy environments move onto, over facts read elsewhere (no service, no HTTP)."""

from __future__ import annotations

from dataclasses import replace

from cmk.domain.roles import READER
from cmk.preflight.target import TargetPolicyFacts, check_target_policy
from tests.cmk import factories as f


def good() -> TargetPolicyFacts:
    """A Healthy policy with a compliant vault, its key and the admin's Reader."""
    reader = (f.assignment(f.ADMIN, READER, f.POLICY_ID),)
    return TargetPolicyFacts(f.POLICY_ID, f.policy(), f.vault(), None, f.key(), (), f.ADMIN, reader)


def codes(facts: TargetPolicyFacts) -> list[str]:
    return [x.code for x in check_target_policy(facts)]


def test_a_healthy_policy_with_its_grants_passes() -> None:
    assert [x for x in check_target_policy(good()) if x.severity == "blocking"] == []


def test_each_missing_fact_is_its_own_blocking_finding() -> None:
    assert codes(TargetPolicyFacts(f.POLICY_ID, None)) == ["POLICY_NOT_FOUND"]
    assert "POLICY_NOT_HEALTHY" in codes(replace(good(), policy=f.policy(health="Unhealthy")))
    unreadable = codes(replace(good(), vault=None, vault_error="403 Forbidden"))
    assert "VAULT_UNREADABLE" in unreadable
    assert "KEY_NOT_FOUND" in codes(replace(good(), key=None))
    assert "READER_NOT_GRANTED" in codes(replace(good(), reader_assignments=()))
    blocking_first = check_target_policy(replace(good(), policy=f.policy(health="Unhealthy"), key=None))
    assert blocking_first[0].severity == "blocking"
