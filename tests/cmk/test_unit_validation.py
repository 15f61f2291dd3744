"""Parameter rules: each refusal names the field, what is wrong and what a valid value looks like."""

from __future__ import annotations

import pytest

from cmk.preflight.parameters import GEOS, InvalidParameterError, Parameters

SUB = "11111111-2222-3333-4444-555555555555"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
POLICY = (
    f"/subscriptions/{SUB}/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/ep-eu"
)
ENV = "0b6e3c1a-4f3e-4c1b-9c55-8b0f1d2e3a4b"


def refusals(check) -> list[str]:  # type: ignore[no-untyped-def]
    p = Parameters()
    check(p)
    return p.problems


@pytest.mark.parametrize("name", ["pp-cmk-key", "K", "a" * 127, "Key-2026-01"])
def test_valid_key_names_pass(name: str) -> None:
    assert refusals(lambda p: p.key_name(name)) == []


@pytest.mark.parametrize("name", ["", "my key", "key!", "a" * 128, "clé", "key_1", "key.1"])
def test_bad_key_names_are_refused_with_the_rule(name: str) -> None:
    [problem] = refusals(lambda p: p.key_name(name))
    assert problem.startswith("key_name") and "1-127 letters, digits and '-'" in problem


def test_optional_key_name_may_be_empty_but_not_bad() -> None:
    assert refusals(lambda p: p.key_name("", "new_key_name", optional=True)) == []
    assert refusals(lambda p: p.key_name("bad name", "new_key_name", optional=True))


@pytest.mark.parametrize("name", ["ep-cmk-eu", "EP_1.v2", "a" * 64])
def test_valid_policy_names_pass(name: str) -> None:
    assert refusals(lambda p: p.policy_name(name)) == []


@pytest.mark.parametrize("name", ["", "ep cmk", "ep-ü", "ep.", "-ep", "a" * 65, "ep/1", "ep#1"])
def test_bad_policy_names_are_refused(name: str) -> None:
    [problem] = refusals(lambda p: p.policy_name(name))
    assert "not a valid enterprise policy name" in problem and "ep-cmk-eu" in problem


@pytest.mark.parametrize("name", ["rg-cmk", "RG_(prod).1", "rg-ü", "a" * 90])
def test_valid_resource_groups_pass(name: str) -> None:
    assert refusals(lambda p: p.resource_group(name)) == []


@pytest.mark.parametrize("name", ["", "rg.", "rg cmk", "rg/1", "a" * 91, "rg!"])
def test_bad_resource_groups_are_refused(name: str) -> None:
    [problem] = refusals(lambda p: p.resource_group(name))
    assert "not a resource group name" in problem


def test_vault_id_shape_name_and_subscription_are_checked() -> None:
    assert refusals(lambda p: p.vault_id(VAULT)) == []
    assert "not a Key Vault resource id" in refusals(lambda p: p.vault_id("kv-cmk-demo"))[0]
    [bad_name] = refusals(lambda p: p.vault_id(VAULT.replace("kv-cmk-demo", "kv--x")))
    assert "not a Key Vault name" in bad_name
    [bad_sub] = refusals(lambda p: p.vault_id(VAULT.replace(SUB, "my-subscription")))
    assert "subscription" in bad_sub and "GUID" in bad_sub
    assert refusals(lambda p: p.vault_id("", optional=True)) == []


def test_policy_id_shape_and_name_are_checked() -> None:
    assert refusals(lambda p: p.policy_id(POLICY)) == []
    assert "enterprise policy resource id" in refusals(lambda p: p.policy_id(VAULT))[0]
    assert "policy name" in refusals(lambda p: p.policy_id(POLICY.replace("ep-eu", "ep-é")))[0]


def test_geos_are_the_documented_list_with_aliases() -> None:
    p = Parameters()
    assert (
        p.geo("Europe") == "europe"
        and p.geo("unitedkingdom") == "uk"
        and p.geo("unitedarabemirates") == "uae"
    )
    assert p.problems == []
    [problem] = refusals(lambda p: p.geo("westeurope"))
    assert "not a Power Platform geo" in problem and "europe" in problem and len(GEOS) == 18


def test_environment_ids_must_be_guids_and_duplicates_are_noted() -> None:
    p = Parameters()
    ids = p.environment_ids([ENV, ENV.upper(), " " + ENV + " "])
    assert ids == [ENV] and p.problems == []
    assert p.notes and "3 times" in p.notes[0]
    [problem] = refusals(lambda p: p.environment_ids(["contoso-dev", ENV, "12"]))
    assert "2 value(s)" in problem and "'contoso-dev'" in problem and "GUID" in problem


@pytest.mark.parametrize("value", [0, -10, -0.5, True, "60"])
def test_timeouts_must_be_positive_numbers(value: object) -> None:
    [problem] = refusals(lambda p: p.positive(value, "operation_timeout_seconds"))  # type: ignore[arg-type]
    assert problem.startswith("operation_timeout_seconds must be more than 0 seconds")


def test_timeout_maximum() -> None:
    assert "at most" in refusals(lambda p: p.positive(10**9, "t", maximum=7 * 86400))[0]
    assert refusals(lambda p: p.positive(0.5, "t")) == []


def test_wave_bounds() -> None:
    assert refusals(lambda p: p.waves(4, 1, 1, 32)) == []
    problems = refusals(lambda p: p.waves(0, -1, -2, 32))
    assert [x.split(" ")[0] for x in problems] == ["concurrency", "canary_size", "failure_threshold"]
    assert "from 1 to 32" in refusals(lambda p: p.waves(33, 1, 1, 32))[0]


def test_every_refusal_is_raised_together() -> None:
    p = Parameters()
    p.change_id("bad id!")
    p.requester("  ")
    p.key_name("bad key")
    with pytest.raises(InvalidParameterError) as caught:
        p.done()
    message = str(caught.value)
    assert message.startswith("3 invalid parameters") and "Nothing was read or changed" in message
    assert isinstance(caught.value, ValueError) and len(caught.value.problems) == 3


def test_done_without_refusals_is_silent() -> None:
    p = Parameters()
    p.change_id("CHG-1")
    p.requester("alice")
    p.done()


def test_timeouts_have_a_seven_day_ceiling() -> None:
    assert refusals(lambda p: p.timeout(7 * 86400)) == []
    [problem] = refusals(lambda p: p.timeout(7 * 86400 + 1, "health_timeout_seconds"))
    assert problem.startswith("health_timeout_seconds must be at most 604800 seconds")
