"""Preflight checks pass on compliant models and fail with the right code on each violation."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from cmk.domain.models import AccessPolicyInfo
from cmk.domain.roles import CRYPTO_SERVICE_ENCRYPTION_USER, READER
from cmk.preflight import (
    Finding,
    check_environment,
    check_identity_permissions,
    check_key,
    check_policy,
    check_reader_grant,
    check_vault,
    findings_to_json,
    render_findings_table,
    same_geo,
)
from tests.cmk import factories as f


def codes(findings: list[Finding]) -> list[str]:
    return [x.code for x in findings]


def test_compliant_inputs_have_no_findings() -> None:
    assert check_vault(f.vault()) == []
    assert check_key(f.key(), f.NOW) == []
    assert check_policy(f.policy(), f.vault()) == []
    assert check_identity_permissions(f.vault(), f.policy()) == []
    assert check_environment(f.env(), f.policy()) == []
    assert check_reader_grant([f.assignment(f.ADMIN, READER, f.POLICY_ID)], f.ADMIN, f.POLICY_ID) == []


@pytest.mark.parametrize(
    ("vault_kw", "expected"),
    [
        ({"soft_delete": False}, ["VAULT_SOFT_DELETE_OFF"]),
        ({"purge_protection": False}, ["VAULT_PURGE_PROTECTION_OFF"]),
        (
            {"soft_delete": False, "purge_protection": False},
            ["VAULT_SOFT_DELETE_OFF", "VAULT_PURGE_PROTECTION_OFF"],
        ),
    ],
)
def test_vault_findings(vault_kw: dict, expected: list[str]) -> None:
    found = check_vault(f.vault(**vault_kw))
    assert codes(found) == expected
    assert all(x.severity == "blocking" and x.remediation for x in found)


def test_missing_vault() -> None:
    assert codes(check_vault(None, f.VAULT_ID)) == ["VAULT_NOT_FOUND"]


@pytest.mark.parametrize(
    ("key_kw", "expected"),
    [
        ({"kty": "EC"}, "KEY_TYPE_UNSUPPORTED"),
        ({"kty": "oct-HSM"}, "KEY_TYPE_UNSUPPORTED"),
        ({"size": 4096}, "KEY_SIZE_UNSUPPORTED"),
        ({"size": 1024}, "KEY_SIZE_UNSUPPORTED"),
        ({"enabled": False}, "KEY_DISABLED"),
        ({"not_before": f.NOW + timedelta(hours=1)}, "KEY_NOT_ACTIVE"),
        ({"expires_on": f.NOW - timedelta(seconds=1)}, "KEY_EXPIRED"),
        ({"expires_on": f.NOW + timedelta(days=29)}, "KEY_EXPIRING_SOON"),
    ],
)
def test_key_findings(key_kw: dict, expected: str) -> None:
    assert codes(check_key(f.key(**key_kw), f.NOW, expiry_margin_days=30)) == [expected]


def test_key_passes_for_supported_variants_and_dates() -> None:
    assert check_key(f.key(kty="RSA-HSM", size=3072), f.NOW) == []
    assert (
        check_key(f.key(not_before=f.NOW - timedelta(days=1), expires_on=f.NOW + timedelta(days=31)), f.NOW)
        == []
    )
    assert check_key(f.key(expires_on=f.NOW + timedelta(days=10)), f.NOW, expiry_margin_days=5) == []
    assert codes(check_key(None, f.NOW, key_ref="x")) == ["KEY_NOT_FOUND"]


@pytest.mark.parametrize(
    ("policy_kw", "expected"),
    [
        ({"kind": "NetworkInjection"}, ["POLICY_KIND_INVALID"]),
        ({"principal_id": None}, ["POLICY_IDENTITY_MISSING"]),
        ({"identity_type": "None"}, ["POLICY_IDENTITY_MISSING"]),
        ({"system_id": None}, ["POLICY_SYSTEM_ID_MISSING"]),
        ({"key_name": None}, ["POLICY_KEY_MISSING"]),
        ({"vault_id": f.VAULT_ID.replace("kv-cmk-demo", "kv-other")}, ["POLICY_VAULT_MISMATCH"]),
        ({"health": "Unhealthy"}, ["POLICY_UNHEALTHY"]),
    ],
)
def test_policy_findings(policy_kw: dict, expected: list[str]) -> None:
    assert codes(check_policy(f.policy(**policy_kw), f.vault())) == expected


def test_policy_vault_id_comparison_is_case_insensitive_and_missing_policy_blocks() -> None:
    assert check_policy(f.policy(vault_id=f.VAULT_ID.lower() + "/"), f.vault()) == []
    assert codes(check_policy(None, policy_id=f.POLICY_ID)) == ["POLICY_NOT_FOUND"]


@pytest.mark.parametrize(
    "perms",
    [
        frozenset(),
        frozenset({"get", "wrapkey"}),
        frozenset({"wrapkey", "unwrapkey"}),
        frozenset({"get", "unwrapkey"}),
    ],
)
def test_access_policy_missing_permissions(perms: frozenset[str]) -> None:
    vault = f.vault(access_policies=(AccessPolicyInfo(f.PRINCIPAL, perms),))
    found = check_identity_permissions(vault, f.policy())
    assert codes(found) == ["IDENTITY_KEY_PERMISSIONS_MISSING"]


def test_access_policy_absent_and_all_permission() -> None:
    assert codes(check_identity_permissions(f.vault(access_policies=()), f.policy())) == [
        "IDENTITY_KEY_PERMISSIONS_MISSING"
    ]
    everything = f.vault(access_policies=(AccessPolicyInfo(f.PRINCIPAL.upper(), frozenset({"all"})),))
    assert check_identity_permissions(everything, f.policy()) == []


def test_rbac_vault_needs_the_role_at_vault_scope_or_above() -> None:
    vault = f.vault(rbac=True, access_policies=())
    rg_scope = f.VAULT_ID.split("/providers/")[0]
    assert (
        check_identity_permissions(
            vault, f.policy(), [f.assignment(f.PRINCIPAL, CRYPTO_SERVICE_ENCRYPTION_USER, rg_scope)]
        )
        == []
    )
    assert (
        check_identity_permissions(
            vault, f.policy(), [f.assignment(f.PRINCIPAL, CRYPTO_SERVICE_ENCRYPTION_USER, f.VAULT_ID)]
        )
        == []
    )
    wrong_role = [f.assignment(f.PRINCIPAL, READER, f.VAULT_ID)]
    other_vault = [f.assignment(f.PRINCIPAL, CRYPTO_SERVICE_ENCRYPTION_USER, f.VAULT_ID + "2")]
    other_principal = [f.assignment(f.ADMIN, CRYPTO_SERVICE_ENCRYPTION_USER, f.VAULT_ID)]
    for assignments in ([], wrong_role, other_vault, other_principal):
        assert codes(check_identity_permissions(vault, f.policy(), assignments)) == [
            "IDENTITY_RBAC_ROLE_MISSING"
        ]


@pytest.mark.parametrize(
    ("env_kw", "expected"),
    [
        ({"sku": "Trial", "managed": True}, ["ENV_SKU_NOT_ALLOWED"]),
        ({"sku": "Teams"}, ["ENV_SKU_NOT_ALLOWED"]),
        ({"managed": False}, ["ENV_NOT_MANAGED"]),
        ({"location": "unitedstates"}, ["ENV_GEO_MISMATCH"]),
        ({"cmk": f.link("Linking"), "runtime_state": "Disabled"}, ["ENV_OPERATION_RUNNING"]),
        ({"cmk": f.link("UnlinkingOnline")}, ["ENV_OPERATION_RUNNING"]),
        ({"runtime_state": "Disabled"}, ["ENV_DISABLED"]),
        ({"cmk": f.link("Linked")}, ["ENV_ALREADY_LINKED"]),
        ({"cmk": f.link("Linked", system_id="/regions/europe/x/other")}, ["ENV_LINKED_TO_OTHER_POLICY"]),
        ({"byok": True, "key_managed_by": "Customer"}, ["ENV_LEGACY_BYOK"]),
        ({"cmk": f.link("Failed")}, ["ENV_PREVIOUS_LINK_FAILED"]),
    ],
)
def test_environment_findings(env_kw: dict, expected: list[str]) -> None:
    assert codes(check_environment(f.env(**env_kw), f.policy())) == expected


def test_environment_missing_and_severity_of_informational_findings() -> None:
    assert codes(check_environment(None, f.policy(), "e1")) == ["ENV_NOT_FOUND"]
    linked = check_environment(f.env(cmk=f.link()), f.policy())
    assert [x.severity for x in linked] == ["info"]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("unitedstates", "unitedstateseuap", True),
        ("UK", "unitedkingdom", True),
        ("Europe", "europe", True),
        ("europe", "unitedstates", False),
        ("", "europe", False),
    ],
)
def test_geo_pairs(a: str, b: str, same: bool) -> None:
    assert same_geo(a, b) is same
    env = f.env(location=a)
    assert ("ENV_GEO_MISMATCH" not in codes(check_environment(env, f.policy(location=b)))) is same


def test_reader_grant() -> None:
    assert (
        check_reader_grant(
            [f.assignment(f.ADMIN, READER, f.VAULT_ID.split("/resourceGroups")[0])], f.ADMIN, f.POLICY_ID
        )
        == []
    )
    for assignments in (
        [],
        [f.assignment(f.ADMIN, CRYPTO_SERVICE_ENCRYPTION_USER, f.POLICY_ID)],
        [f.assignment(f.PRINCIPAL, READER, f.POLICY_ID)],
        [f.assignment(f.ADMIN, READER, f.POLICY_ID + "-other")],
    ):
        assert codes(check_reader_grant(assignments, f.ADMIN, f.POLICY_ID)) == ["READER_NOT_GRANTED"]
    assert codes(check_reader_grant([], None, f.POLICY_ID)) == ["READER_ADMIN_UNKNOWN"]


def test_render_table_and_json_put_blocking_first() -> None:
    findings = [
        Finding("ENV_ALREADY_LINKED", "info", "e1", "a | b", "nothing"),
        Finding("VAULT_SOFT_DELETE_OFF", "blocking", "v", "off", "turn on"),
    ]
    table = render_findings_table(findings)
    lines = table.splitlines()
    assert (
        lines[0].split("|")[1].strip() == "severity"
        and "VAULT_SOFT_DELETE_OFF" in lines[2]
        and "a \\| b" in lines[3]
    )
    data = json.loads(findings_to_json(findings))
    assert [d["code"] for d in data] == ["VAULT_SOFT_DELETE_OFF", "ENV_ALREADY_LINKED"]
    assert set(data[0]) == {"code", "severity", "target", "message", "remediation"}
    assert "passed" in render_findings_table([])


def test_findings_are_frozen() -> None:
    finding = check_vault(f.vault(soft_delete=False))[0]
    with pytest.raises(AttributeError):
        finding.code = "X"  # type: ignore[misc]
    assert replace(finding, severity="info").severity == "info"


def test_find_requested_returns_known_environments_and_a_finding_per_unknown_id() -> None:
    from cmk.domain.models import EnvironmentInfo
    from cmk.preflight import find_requested

    env = EnvironmentInfo(
        id="AAA-1",
        display_name="A",
        location="europe",
        azure_region=None,
        sku="Production",
        managed=True,
        runtime_state="Enabled",
        management_state="Ready",
        key_managed_by="Microsoft",
    )
    chosen, findings = find_requested([env], [" aaa-1 ", "missing-2"])
    assert chosen == [env]
    assert [(f.code, f.target) for f in findings] == [("ENV_NOT_FOUND", "missing-2")]
