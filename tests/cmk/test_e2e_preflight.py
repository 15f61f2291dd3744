"""Preflight against real simulator state: every check passes on a good setup and fails with its code on a bad one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azure.core.rest import HttpRequest

from cmk.domain.resource_ids import policy_id, vault_id
from cmk.domain.roles import CRYPTO_SERVICE_ENCRYPTION_USER
from cmk.preflight import run_preflight
from tests.cmk.conftest import FINANCE, LEGACY_BYOK, MARKETING, TRIAL, US_OPERATIONS, Services, onboard


def preflight(s: Services, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {"vault_id": s.vault_id, "key_name": "cmk"}
    args.update(kw)
    return run_preflight(s.kv, s.arm, s.bap, **args)  # type: ignore[arg-type]


def test_good_setup_passes_every_check(svc: Services) -> None:
    _, policy = onboard(svc)
    report = preflight(svc, policy_id=policy.id, env_ids=[FINANCE])
    assert report.passed, report.table()
    assert report.findings == [] and report.key and report.key.size == 2048
    assert "No findings" in report.table() and report.to_json() == "[]"


def test_key_missing_then_each_key_problem(svc: Services) -> None:
    uri = svc.kv.get_vault(svc.vault_id).uri
    assert preflight(svc).codes() == ["KEY_NOT_FOUND"]
    client = svc.kv._key_client(uri)  # the test arranges bad keys with the same SDK client
    now = datetime.now(UTC)
    client.create_rsa_key("big", size=4096)
    assert preflight(svc, key_name="big").codes() == ["KEY_SIZE_UNSUPPORTED"]
    client.create_rsa_key("soon", size=2048, expires_on=now + timedelta(days=10))
    assert preflight(svc, key_name="soon").codes() == ["KEY_EXPIRING_SOON"]
    assert preflight(svc, key_name="soon", expiry_margin_days=5).codes() == []
    client.create_rsa_key("later", size=2048, not_before=now + timedelta(days=1))
    assert preflight(svc, key_name="later").codes() == ["KEY_NOT_ACTIVE"]
    key, _ = svc.kv.ensure_key(uri, "cmk")
    svc.kv.set_key_version_enabled(uri, "cmk", key.version, False)
    assert preflight(svc).codes() == ["KEY_DISABLED"]
    client.update_key_properties("soon", expires_on=now - timedelta(minutes=1))
    assert preflight(svc, key_name="soon").codes() == ["KEY_EXPIRED"]


def test_vault_without_purge_protection_and_missing_vault(svc: Services) -> None:
    mgmt = svc.kv._mgmt_client(svc.azure.subscription_id)
    body = {
        "location": "westeurope",
        "properties": {
            "tenantId": svc.azure.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [],
            "enableSoftDelete": True,
            "enablePurgeProtection": False,
        },
    }
    mgmt.vaults.begin_create_or_update("rg-cmk", "kv-weak", body).result()
    weak = vault_id(svc.azure.subscription_id, "rg-cmk", "kv-weak")
    assert preflight(svc, vault_id=weak, key_name=None).codes() == ["VAULT_PURGE_PROTECTION_OFF"]
    missing = vault_id(svc.azure.subscription_id, "rg-cmk", "kv-absent")
    assert preflight(svc, vault_id=missing).codes() == ["VAULT_NOT_FOUND"]


def test_policy_identity_and_reader_checks_fail_then_pass(svc: Services) -> None:
    vault, policy = onboard(svc, grant=False, reader=False)
    report = preflight(svc, policy_id=policy.id)
    assert set(report.codes()) == {
        "IDENTITY_KEY_PERMISSIONS_MISSING",
        "READER_NOT_GRANTED",
        "POLICY_UNHEALTHY",
    }
    assert report.table().index("IDENTITY_KEY_PERMISSIONS_MISSING") < report.table().index("POLICY_UNHEALTHY")
    onboard(svc)  # grants both
    assert preflight(svc, policy_id=policy.id).codes() == []


def test_missing_policy_and_identity_not_yet_there(svc: Services) -> None:
    svc.kv.ensure_key(svc.kv.get_vault(svc.vault_id).uri, "cmk")
    absent = policy_id(svc.azure.subscription_id, "rg-cmk", "ep-absent")
    assert preflight(svc, policy_id=absent).codes() == ["POLICY_NOT_FOUND"]
    svc.sim.control.settings(policy_identity_delay_seconds=600)
    svc.arm.ensure_provider_registered(poll=0.2)
    late = svc.arm.deploy_enterprise_policy("rg-cmk", "ep-late", "europe", svc.vault_id, "cmk")
    assert "POLICY_IDENTITY_MISSING" in preflight(svc, policy_id=late.id).codes()


def test_policy_for_another_vault_and_of_another_kind(svc: Services) -> None:
    onboard(svc)
    other = vault_id(svc.azure.subscription_id, "rg-cmk", "kv-other")
    mgmt = svc.kv._mgmt_client(svc.azure.subscription_id)
    body = {
        "location": "westeurope",
        "properties": {
            "tenantId": svc.azure.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [],
            "enablePurgeProtection": True,
        },
    }
    mgmt.vaults.begin_create_or_update("rg-cmk", "kv-other", body).result()
    foreign = svc.arm.deploy_enterprise_policy("rg-cmk", "ep-other", "europe", other, "cmk")
    assert "POLICY_VAULT_MISMATCH" in preflight(svc, policy_id=foreign.id).codes()
    net = policy_id(svc.azure.subscription_id, "rg-cmk", "ep-net")
    put = {
        "location": "europe",
        "kind": "NetworkInjection",
        "properties": {"networkInjection": {"virtualNetworks": []}},
    }
    svc.arm.resources.send_request(HttpRequest("PUT", f"{net}?api-version=2020-10-30-preview", json=put))
    assert "POLICY_KIND_INVALID" in preflight(svc, policy_id=net).codes()


def test_rbac_vault_needs_the_crypto_role(svc: Services) -> None:
    mgmt = svc.kv._mgmt_client(svc.azure.subscription_id)
    body = {
        "location": "westeurope",
        "properties": {
            "tenantId": svc.azure.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enableRbacAuthorization": True,
            "enablePurgeProtection": True,
        },
    }
    mgmt.vaults.begin_create_or_update("rg-cmk", "kv-rbac", body).result()
    rbac = vault_id(svc.azure.subscription_id, "rg-cmk", "kv-rbac")
    svc.arm.ensure_role_assignment(
        rbac, svc.sim.identity("keyvault-admin")["object_id"], "Key Vault Crypto Officer"
    )
    vault = svc.kv.get_vault(rbac)
    svc.kv.ensure_key(vault.uri, "cmk")
    svc.arm.ensure_provider_registered(poll=0.2)
    policy = svc.arm.deploy_enterprise_policy("rg-cmk", "ep-rbac", "europe", rbac, "cmk")
    policy = svc.arm.wait_for_policy_identity(policy.id, timeout=30, poll=0.2)
    svc.arm.ensure_role_assignment(policy.id, svc.pp.admin_object_id or "", "Reader")
    assert "IDENTITY_RBAC_ROLE_MISSING" in preflight(svc, vault_id=rbac, policy_id=policy.id).codes()
    svc.arm.ensure_role_assignment(rbac, policy.principal_id or "", CRYPTO_SERVICE_ENCRYPTION_USER)
    assert preflight(svc, vault_id=rbac, policy_id=policy.id).codes() == []


def test_environment_checks(svc: Services) -> None:
    _, policy = onboard(svc)
    absent = "00000000-0000-0000-0000-000000000000"
    report = preflight(svc, policy_id=policy.id, env_ids=[MARKETING, TRIAL, US_OPERATIONS])
    by_env = {(f.target, f.code) for f in report.findings}
    assert (MARKETING, "ENV_NOT_MANAGED") in by_env
    assert (TRIAL, "ENV_SKU_NOT_ALLOWED") in by_env
    assert (US_OPERATIONS, "ENV_GEO_MISMATCH") in by_env
    assert preflight(svc, policy_id=policy.id, env_ids=[absent]).codes() == ["ENV_NOT_FOUND"]
    assert preflight(svc, policy_id=policy.id, env_ids=[LEGACY_BYOK]).codes() == ["ENV_LEGACY_BYOK"]
    handle = svc.bap.start_link(FINANCE, policy.system_id or "")
    assert preflight(svc, policy_id=policy.id, env_ids=[FINANCE]).codes() == ["ENV_OPERATION_RUNNING"]
    svc.bap.wait(handle, 30)
    linked = preflight(svc, policy_id=policy.id, env_ids=[FINANCE])
    assert linked.codes() == ["ENV_ALREADY_LINKED"] and linked.passed


def test_bulk_environment_read_uses_one_listing(svc: Services) -> None:
    _, policy = onboard(svc)
    since = svc.sim.control.last_seq()
    envs = [FINANCE, MARKETING, TRIAL, US_OPERATIONS, LEGACY_BYOK]
    report = preflight(svc, policy_id=policy.id, env_ids=envs)
    assert set(report.environments) == set(envs)
    assert svc.sim.control.requests(since=since, operation="bap.get_environment") == []
    assert len(svc.sim.control.requests(since=since, operation="bap.list_environments")) == 1
