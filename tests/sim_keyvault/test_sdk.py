"""End to end: the real azure-keyvault-keys clients against the simulated Key Vault over verified HTTPS."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import (
    KeyClient,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
)
from azure.keyvault.keys._shared import HttpChallengeCache
from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm
from azure.mgmt.keyvault import KeyVaultManagementClient

from simulator.keyvault import models
from simulator.testing import RunningSimulator
from tests.support import mi_credential

VAULT = "kv-cmk-demo"
RG = "rg-cmk"
DAY = 86400
CRYPTO_OFFICER = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"


def vault_url(sim: RunningSimulator) -> str:
    """The demo vault's data-plane URL (the same one ARM reports as vaultUri)."""
    return sim.world.allocate_vault_uri(VAULT)


def key_client(sim: RunningSimulator, identity: str = "keyvault-admin") -> KeyClient:
    """A real KeyClient for a scenario identity, TLS verified with the simulator's CA."""
    return KeyClient(
        vault_url(sim),
        credential=mi_credential(sim.endpoints, identity),
        verify_challenge_resource=False,
        connection_verify=sim.ca_bundle,
    )


def crypto_client(sim: RunningSimulator, key: object, identity: str = "keyvault-admin") -> CryptographyClient:
    """A real CryptographyClient for a key (KeyVaultKey or key id)."""
    return CryptographyClient(
        key,  # type: ignore[arg-type]
        credential=mi_credential(sim.endpoints, identity),
        verify_challenge_resource=False,
        connection_verify=sim.ca_bundle,
    )


@pytest.fixture(autouse=True)
def needs_arm_vaults(fresh_sim: RunningSimulator) -> None:
    """Skip while simulator/arm does not serve vaults yet (the data plane looks vaults up through ARM)."""
    if fresh_sim.world.arm.find_vault(VAULT) is None:
        pytest.skip("simulator/arm does not serve the demo vault yet (ArmState.find_vault is a stub)")


@pytest.fixture
def kv(fresh_sim: RunningSimulator) -> Iterator[KeyClient]:
    """A KeyClient as keyvault-admin on a freshly reset simulator."""
    with key_client(fresh_sim) as client:
        yield client


def _error_code(exc: HttpResponseError) -> tuple[int | None, str | None, str | None]:
    error = exc.error
    inner = getattr(error, "innererror", None) or {}
    return (
        exc.status_code,
        error.code if error else None,
        inner.get("code") if isinstance(inner, dict) else None,
    )


def test_challenge_then_authorized_create(fresh_sim: RunningSimulator) -> None:
    HttpChallengeCache.clear()
    since = fresh_sim.control.last_seq()
    with key_client(fresh_sim) as client:
        key = client.create_rsa_key("cmk")
    logged = fresh_sim.control.requests(since=since, service="keyvault")
    assert [(r["method"], r["status"], r["caller"]) for r in logged] == [
        ("POST", 401, None),
        ("POST", 200, "keyvault-admin"),
    ]
    assert key.key_type == "RSA" and len(key.key.n) == 256
    assert len(key.properties.version) == 32
    assert key.id == f"{vault_url(fresh_sim)}/keys/cmk/{key.properties.version}"
    assert key.properties.recovery_level == "Recoverable" and key.properties.recoverable_days == 90
    assert fresh_sim.world.kv.latest_version(VAULT, "cmk") == key.properties.version


def test_create_rsa_hsm_and_sizes(kv: KeyClient) -> None:
    hsm = kv.create_rsa_key("hsm", size=3072, hardware_protected=True)
    assert hsm.key_type == "RSA-HSM" and len(hsm.key.n) == 384
    plain = kv.create_rsa_key("plain", size=2048, key_operations=["wrapKey", "unwrapKey"])
    assert plain.key_type == "RSA" and len(plain.key.n) == 256
    assert plain.key_operations == ["wrapKey", "unwrapKey"]


def test_unsupported_keys_are_refused(kv: KeyClient, fresh_sim: RunningSimulator) -> None:
    for create in (
        lambda: kv.create_ec_key("ec"),
        lambda: kv.create_rsa_key("small", size=1024),
        lambda: kv.create_oct_key("oct"),
        lambda: kv.create_rsa_key("bad_name"),
    ):
        with pytest.raises(HttpResponseError) as exc:
            create()
        assert _error_code(exc.value)[:2] == (400, "BadParameter")
    assert list(kv.list_properties_of_keys()) == []
    assert fresh_sim.world.kv.snapshot()[VAULT]["keys"] == {}


def test_get_latest_and_by_version(kv: KeyClient) -> None:
    first = kv.create_rsa_key("cmk")
    second = kv.create_rsa_key("cmk")
    assert first.properties.version != second.properties.version
    assert kv.get_key("cmk").properties.version == second.properties.version
    old = kv.get_key("cmk", first.properties.version)
    assert old.id == first.id and old.key.n == first.key.n
    with pytest.raises(ResourceNotFoundError) as exc:
        kv.get_key("missing")
    assert _error_code(exc.value)[:2] == (404, "KeyNotFound")
    with pytest.raises(ResourceNotFoundError):
        kv.get_key("cmk", "0" * 32)


def test_versions_and_keys_are_paged(kv: KeyClient, fresh_sim: RunningSimulator) -> None:
    world = fresh_sim.world
    with world.lock:  # seed quickly with pooled material; the listing is what is under test
        for i in range(27):
            world.kv.create_key(VAULT, "many", private_key=models.pooled_rsa_key(2048, i))
        for name in ("k-a", "k-b", "k-c"):
            world.kv.create_key(VAULT, name, private_key=models.pooled_rsa_key(2048, 0))
    since = fresh_sim.control.last_seq()
    versions = [p.version for p in kv.list_properties_of_key_versions("many")]
    assert versions == [v.version for v in world.kv.list_versions(VAULT, "many")]
    assert len(set(versions)) == 27
    pages = fresh_sim.control.requests(since=since, service="keyvault", path_contains="/versions")
    assert len(pages) == 2 and "skiptoken" not in pages[0]["path"]
    names = [p.name for p in kv.list_properties_of_keys(max_page_size=2)]
    assert names == ["k-a", "k-b", "k-c", "many"]
    assert all(p.version is None for p in kv.list_properties_of_keys())


def test_update_enabled_and_expiry(kv: KeyClient, fresh_sim: RunningSimulator) -> None:
    key = kv.create_rsa_key("cmk")
    expires = dt.datetime.fromtimestamp(int(fresh_sim.control.now()) + 30 * DAY, dt.UTC)
    props = kv.update_key_properties(
        "cmk", enabled=False, expires_on=expires, tags={"owner": "kv"}
    ).properties
    assert props.enabled is False and props.expires_on == expires and props.tags == {"owner": "kv"}
    assert kv.get_key("cmk", key.properties.version).properties.enabled is False
    problem = fresh_sim.world.kv.key_problem(VAULT, "cmk", None, fresh_sim.world.now())
    assert problem == f"key 'cmk' version {key.properties.version} is disabled"
    with crypto_client(fresh_sim, key) as crypto, pytest.raises(HttpResponseError) as exc:
        crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"\x00" * 256)
    assert _error_code(exc.value) == (403, "Forbidden", "KeyDisabled")
    kv.update_key_properties("cmk", key.properties.version, enabled=True)
    assert fresh_sim.world.kv.key_problem(VAULT, "cmk", None, fresh_sim.world.now()) is None
    fresh_sim.control.advance(31 * DAY)
    assert "expired" in (fresh_sim.world.kv.key_problem(VAULT, "cmk", None, fresh_sim.world.now()) or "")


def test_wrap_unwrap_and_encrypt_decrypt_round_trip(kv: KeyClient, fresh_sim: RunningSimulator) -> None:
    key = kv.create_rsa_key("cmk", size=3072)
    secret = os.urandom(32)
    since = fresh_sim.control.last_seq()
    with crypto_client(fresh_sim, key) as crypto:
        for alg in (KeyWrapAlgorithm.rsa_oaep_256, KeyWrapAlgorithm.rsa_oaep, KeyWrapAlgorithm.rsa1_5):
            wrapped = crypto.wrap_key(alg, secret)  # public-key op: the SDK does it locally
            assert wrapped.encrypted_key != secret
            assert crypto.unwrap_key(alg, wrapped.encrypted_key).key == secret  # private: the simulator
        encrypted = crypto.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"hello")
        assert crypto.decrypt(EncryptionAlgorithm.rsa_oaep_256, encrypted.ciphertext).plaintext == b"hello"
    served = [
        r["operation"]
        for r in fresh_sim.control.requests(since=since, service="keyvault")
        if r["status"] == 200
    ]
    assert served.count("keyvault.unwrap_key") == 3 and "keyvault.decrypt" in served


def test_soft_delete_recover_and_purge_protection(kv: KeyClient, fresh_sim: RunningSimulator) -> None:
    key = kv.create_rsa_key("cmk")
    deleted = kv.begin_delete_key("cmk").result()
    assert deleted.recovery_id == f"{vault_url(fresh_sim)}/deletedkeys/cmk"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert (deleted.scheduled_purge_date - deleted.deleted_date).days == 90
    assert kv.get_deleted_key("cmk").properties.version == key.properties.version
    assert [d.name for d in kv.list_deleted_keys()] == ["cmk"]
    with pytest.raises(ResourceNotFoundError):
        kv.get_key("cmk")
    with pytest.raises(ResourceExistsError) as exc:
        kv.create_rsa_key("cmk")
    assert _error_code(exc.value) == (409, "Conflict", "ObjectIsDeletedButRecoverable")
    with pytest.raises(HttpResponseError) as exc:
        kv.purge_deleted_key("cmk")
    assert _error_code(exc.value)[:2] == (403, "Forbidden")
    assert "purge protection" in str(exc.value.message)
    recovered = kv.begin_recover_deleted_key("cmk").result()
    assert recovered.properties.version == key.properties.version
    assert kv.get_key("cmk").key.n == key.key.n
    assert list(kv.list_deleted_keys()) == []


def test_rotate_and_rotation_policy(kv: KeyClient, fresh_sim: RunningSimulator) -> None:
    first = kv.create_rsa_key("cmk", key_operations=["wrapKey", "unwrapKey"])
    default = kv.get_key_rotation_policy("cmk")
    assert [(a.action, a.time_before_expiry) for a in default.lifetime_actions] == [
        (KeyRotationPolicyAction.notify, "P30D")
    ]
    policy = kv.update_key_rotation_policy(
        "cmk",
        KeyRotationPolicy(),
        lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")
        ],
        expires_in="P90D",
    )
    assert policy.expires_in == "P90D" and policy.lifetime_actions[0].time_after_create == "P30D"
    assert kv.get_key_rotation_policy("cmk").id == f"{vault_url(fresh_sim)}/keys/cmk/rotationpolicy"
    rotated = kv.rotate_key("cmk")
    assert rotated.properties.version != first.properties.version
    assert rotated.key_operations == ["wrapKey", "unwrapKey"] and rotated.properties.expires_on is not None
    fresh_sim.control.advance(31 * DAY)  # the Rotate action fires on the simulator's clock
    auto = kv.get_key("cmk")
    assert auto.properties.version not in (first.properties.version, rotated.properties.version)
    assert len(list(kv.list_properties_of_key_versions("cmk"))) == 3
    with pytest.raises(HttpResponseError) as exc:
        kv.update_key_rotation_policy(
            "cmk",
            KeyRotationPolicy(),
            lifetime_actions=[
                KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P1D")
            ],
        )
    assert _error_code(exc.value)[:2] == (400, "BadParameter")


def test_forbidden_until_an_access_policy_grants(fresh_sim: RunningSimulator) -> None:
    with key_client(fresh_sim) as admin:
        key = admin.create_rsa_key("cmk")
    pp_oid = fresh_sim.identity("powerplatform-admin")["object_id"]
    with key_client(fresh_sim, "powerplatform-admin") as pp:
        with pytest.raises(HttpResponseError) as exc:
            pp.get_key("cmk")
        status, code, inner = _error_code(exc.value)
        assert (status, code, inner) == (403, "Forbidden", "AccessDenied")
        assert f"oid={pp_oid}" in str(exc.value.message) and "does not have keys get permission" in str(
            exc.value.message
        )
        mgmt = KeyVaultManagementClient(
            mi_credential(fresh_sim.endpoints, "keyvault-admin"),
            fresh_sim.endpoints["subscription_id"],
            base_url=fresh_sim.endpoints["arm"],
            connection_verify=fresh_sim.ca_bundle,
            polling_interval=0,
        )
        with mgmt:
            mgmt.vaults.update_access_policy(
                RG,
                VAULT,
                "add",
                {
                    "properties": {
                        "accessPolicies": [
                            {
                                "tenantId": fresh_sim.endpoints["tenant_id"],
                                "objectId": pp_oid,
                                "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]},
                            }
                        ]
                    }
                },
            )
        assert pp.get_key("cmk").properties.version == key.properties.version
        with pytest.raises(HttpResponseError) as exc:
            pp.create_rsa_key("mine")
        assert _error_code(exc.value)[:2] == (403, "Forbidden")
    with crypto_client(fresh_sim, key.id, "powerplatform-admin") as crypto:
        wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"k" * 32)
        assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == b"k" * 32


def test_injected_503_on_create_is_retried_by_the_sdk(kv: KeyClient, fresh_sim: RunningSimulator) -> None:
    fresh_sim.control.add_fault(
        service="keyvault", operation="keyvault.create_key", status=503, code="ServiceUnavailable", count=1
    )
    since = fresh_sim.control.last_seq()
    key = kv.create_rsa_key("cmk")
    created = fresh_sim.control.requests(since=since, service="keyvault", operation="keyvault.create_key")
    assert [r["status"] for r in created if r["caller"]] == [503, 200]
    assert created[-1]["fault"] is None and fresh_sim.control.faults()[0]["hits"] == 1
    assert fresh_sim.world.kv.latest_version(VAULT, "cmk") == key.properties.version


def _mgmt(sim: RunningSimulator) -> KeyVaultManagementClient:
    """The ARM Key Vault client as keyvault-admin (Owner on the subscription)."""
    return KeyVaultManagementClient(
        mi_credential(sim.endpoints, "keyvault-admin"),
        sim.endpoints["subscription_id"],
        base_url=sim.endpoints["arm"],
        connection_verify=sim.ca_bundle,
        polling_interval=0,
    )


def test_rbac_vault_needs_a_data_action_role(fresh_sim: RunningSimulator) -> None:
    from azure.mgmt.authorization import AuthorizationManagementClient

    with _mgmt(fresh_sim) as mgmt:
        vault = mgmt.vaults.update(RG, VAULT, {"properties": {"enableRbacAuthorization": True}})
    with key_client(fresh_sim) as admin:
        with pytest.raises(HttpResponseError) as exc:
            admin.create_rsa_key("cmk")  # Owner has no data actions
        assert _error_code(exc.value) == (403, "Forbidden", "ForbiddenByRbac")
        assert "Action: 'Microsoft.KeyVault/vaults/keys/create/action'" in str(exc.value.message)
        sub = fresh_sim.endpoints["subscription_id"]
        officer = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{CRYPTO_OFFICER}"
        with AuthorizationManagementClient(
            mi_credential(fresh_sim.endpoints, "keyvault-admin"),
            sub,
            base_url=fresh_sim.endpoints["arm"],
            connection_verify=fresh_sim.ca_bundle,
        ) as auth:
            auth.role_assignments.create(
                vault.id,
                "5f0a3c1e-0000-4000-8000-00000000a001",
                {
                    "properties": {
                        "roleDefinitionId": officer,
                        "principalId": fresh_sim.identity("keyvault-admin")["object_id"],
                        "principalType": "ServicePrincipal",
                    }
                },
            )
        key = admin.create_rsa_key("cmk")
        assert admin.get_key("cmk").properties.version == key.properties.version


def test_soft_deleted_vault_has_no_data_plane(kv: KeyClient, fresh_sim: RunningSimulator) -> None:
    kv.create_rsa_key("cmk")
    with _mgmt(fresh_sim) as mgmt:
        mgmt.vaults.delete(RG, VAULT)
    with pytest.raises(HttpResponseError) as exc:
        kv.get_key("cmk")
    assert _error_code(exc.value)[:2] == (404, "VaultNotFound")
