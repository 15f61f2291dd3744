"""KeyVaultService against the simulator: real azure-mgmt-keyvault and azure-keyvault-keys clients over HTTPS."""

from __future__ import annotations

import pytest

from cmk.clients.keyvault import KeyVaultService
from cmk.domain.resource_ids import vault_id
from cmk.errors import NotFoundError, PreconditionFailedError
from tests.cmk.conftest import Services


def test_get_vault_reads_the_demo_vault(svc: Services) -> None:
    vault = svc.kv.get_vault(svc.vault_id)
    assert (vault.name, vault.soft_delete, vault.purge_protection, vault.rbac) == (
        "kv-cmk-demo",
        True,
        True,
        False,
    )
    assert vault.retention_days == 90 and vault.uri.startswith("https://127.0.0.1:")
    admin = svc.sim.identity("keyvault-admin")["object_id"]
    entry = vault.access_policy_for(admin)
    assert entry is not None and entry.allows("wrapKey")


def test_missing_vault_is_not_found_with_a_correlation_id(svc: Services) -> None:
    with pytest.raises(NotFoundError) as info:
        svc.kv.get_vault(vault_id(svc.azure.subscription_id, "rg-cmk", "kv-nope"))
    assert info.value.status == 404 and info.value.correlation_id and "Check the id" in str(info.value)


def test_ensure_key_creates_then_adopts_then_refuses_a_wrong_size(svc: Services) -> None:
    uri = svc.kv.get_vault(svc.vault_id).uri
    key, created = svc.kv.ensure_key(uri, "cmk")
    assert created and (key.kty, key.size, key.enabled) == ("RSA", 2048, True)
    again, created_again = svc.kv.ensure_key(uri, "cmk")
    assert not created_again and again.version == key.version
    with pytest.raises(PreconditionFailedError) as info:
        svc.kv.ensure_key(uri, "cmk", size=3072)
    assert "already exists" in str(info.value)
    creates = svc.journal.entries(action="keyvault.key.create")
    assert len(creates) == 1 and creates[0]["after"]["kid"] == key.kid and creates[0]["correlation_id"]


def test_ensure_key_hsm_3072_sizes_from_the_modulus(svc: Services) -> None:
    uri = svc.kv.get_vault(svc.vault_id).uri
    key, _ = svc.kv.ensure_key(uri, "cmk-hsm", kty="RSA-HSM", size=3072)
    assert (key.kty, key.size) == ("RSA-HSM", 3072)
    assert svc.kv.get_key(uri, "cmk-hsm", key.version) == key


def test_versions_enable_disable_and_journal(svc: Services) -> None:
    uri = svc.kv.get_vault(svc.vault_id).uri
    first, _ = svc.kv.ensure_key(uri, "cmk")
    second = svc.kv.create_key_version(uri, "cmk")
    assert second.version != first.version and second.size == 2048
    assert [k.version for k in svc.kv.list_key_versions(uri, "cmk")] == [first.version, second.version]
    assert svc.kv.get_key(uri, "cmk").version == second.version
    disabled = svc.kv.set_key_version_enabled(uri, "cmk", first.version, False)
    assert not disabled.enabled and not svc.kv.get_key(uri, "cmk", first.version).enabled
    assert svc.kv.set_key_version_enabled(uri, "cmk", first.version, False) == disabled  # no second write
    svc.kv.set_key_version_enabled(uri, "cmk", first.version, True)
    actions = [e["action"] for e in svc.journal.entries()]
    assert actions == [
        "keyvault.key.create",
        "keyvault.key.new_version",
        "keyvault.key.disable",
        "keyvault.key.enable",
    ]
    assert all(e["actor"] == svc.azure.client_id for e in svc.journal.entries())


def test_missing_key_and_versions_are_not_found(svc: Services) -> None:
    uri = svc.kv.get_vault(svc.vault_id).uri
    with pytest.raises(NotFoundError):
        svc.kv.get_key(uri, "absent")
    with pytest.raises(NotFoundError):
        svc.kv.list_key_versions(uri, "absent")


def test_access_policy_is_idempotent_and_removable(svc: Services) -> None:
    principal = "9f0e8d7c-0000-4000-8000-000000000123"
    assert svc.kv.ensure_access_policy(svc.vault_id, principal) is True
    assert svc.kv.ensure_access_policy(svc.vault_id, principal) is False
    entry = svc.kv.get_vault(svc.vault_id).access_policy_for(principal)
    assert entry is not None and entry.key_permissions == {"get", "wrapkey", "unwrapkey"}
    assert svc.kv.can_identity_use_key(svc.kv.get_vault(svc.vault_id), principal) == []
    assert sorted(svc.kv.remove_access_policy(svc.vault_id, principal)) == ["get", "unwrapkey", "wrapkey"]
    assert svc.kv.remove_access_policy(svc.vault_id, principal) == []
    assert svc.kv.get_vault(svc.vault_id).access_policy_for(principal) is None
    actions = [e["action"] for e in svc.journal.entries()]
    assert actions == ["keyvault.access_policy.add", "keyvault.access_policy.remove"]


def test_a_second_service_instance_reuses_nothing_but_works(svc: Services) -> None:
    with KeyVaultService(svc.azure) as other:
        assert other.get_vault(svc.vault_id).name == "kv-cmk-demo"
