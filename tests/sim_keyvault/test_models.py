"""Key Vault data-plane models without HTTP: keys, versions, soft delete, rotation, crypto, authorization."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from simulator.core.errors import SimError
from simulator.keyvault import models
from simulator.keyvault.authz import authorize
from simulator.scenarios.demo import KEYVAULT_ADMIN, build_demo
from simulator.world import World

VAULT = "kv-cmk-demo"
DAY = 86400


@dataclass
class FakeVault:
    """The slice of the ARM vault interface the key store and authz use."""

    name: str = VAULT
    id: str = "/subscriptions/s/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
    location: str = "westeurope"
    enable_soft_delete: bool = True
    soft_delete_retention_days: int = 90
    enable_purge_protection: bool = True
    enable_rbac_authorization: bool = False
    permissions: dict[str, set[str]] = field(default_factory=dict)

    def key_permissions_for(self, object_id: str) -> set[str]:
        return self.permissions.get(object_id, set())


@pytest.fixture
def world() -> World:
    return World(build_demo())


def _error(exc: pytest.ExceptionInfo[SimError]) -> tuple[int, str, str | None]:
    body = exc.value.body()["error"]
    return exc.value.status, body["code"], body.get("innererror", {}).get("code")


def test_create_defaults_to_rsa_2048_with_fresh_material(world: World) -> None:
    first = world.kv.create_key(VAULT, "cmk")
    other = world.kv.create_key(VAULT, "cmk2")
    assert first.kty == "RSA" and first.key_size == 2048
    assert len(first.version) == 32 and int(first.version, 16) >= 0
    assert first.key_ops == models.DEFAULT_KEY_OPS
    jwk = first.jwk("https://h/keys/cmk/" + first.version)
    assert len(models.unb64url(jwk["n"])) == 256 and jwk["e"] == "AQAB"
    assert jwk["n"] != other.jwk("x")["n"]


def test_create_rsa_hsm_3072(world: World) -> None:
    version = world.kv.create_key(VAULT, "hsm", kty="RSA-HSM", key_size=3072)
    bundle = models.key_bundle(version, FakeVault(), "https://127.0.0.1:1")
    assert bundle["key"]["kty"] == "RSA-HSM"
    assert len(models.unb64url(bundle["key"]["n"])) == 384
    assert bundle["key"]["kid"] == f"https://127.0.0.1:1/keys/hsm/{version.version}"


@pytest.mark.parametrize(
    ("name", "kty", "size"),
    [
        ("cmk", "EC", None),
        ("cmk", "oct", None),
        ("cmk", "RSA", 1024),
        ("cmk", "RSA", 2047),
        ("bad_name", "RSA", None),
    ],
)
def test_create_refuses_unsupported_input(world: World, name: str, kty: str, size: int | None) -> None:
    with pytest.raises(SimError) as exc:
        world.kv.create_key(VAULT, name, kty=kty, key_size=size)
    assert _error(exc)[:2] == (400, "BadParameter")
    assert world.kv.snapshot()[VAULT]["keys"] == {}


def test_create_on_existing_name_adds_a_version(world: World) -> None:
    first = world.kv.create_key(VAULT, "cmk")
    second = world.kv.create_key(VAULT, "CMK")  # names are case-insensitive
    assert world.kv.latest_version(VAULT, "cmk") == second.version != first.version
    assert [v.version for v in world.kv.list_versions(VAULT, "cmk")] == [first.version, second.version]
    assert world.kv.get_version(VAULT, "cmk", first.version.upper()) is first
    assert second.name == "cmk"


def test_get_missing_key_or_version_is_key_not_found(world: World) -> None:
    world.kv.create_key(VAULT, "cmk")
    for version in (None, "0" * 32):
        with pytest.raises(SimError) as exc:
            world.kv.get_version(VAULT, "cmk" if version else "nope", version)
        assert _error(exc)[:2] == (404, "KeyNotFound")


def test_update_attributes_and_key_problem(world: World) -> None:
    version = world.kv.create_key(VAULT, "cmk")
    now = world.now()
    assert world.kv.key_problem(VAULT, "cmk", None, now) is None
    world.kv.update_version(VAULT, "cmk", None, attributes={"enabled": False}, tags={"a": "b"})
    assert version.enabled is False and version.tags == {"a": "b"}
    assert (
        world.kv.key_problem(VAULT, "cmk", version.version, now)
        == f"key 'cmk' version {version.version} is disabled"
    )
    world.kv.update_version(VAULT, "cmk", version.version, attributes={"enabled": True, "exp": int(now) - 1})
    assert "expired" in (world.kv.key_problem(VAULT, "cmk", None, now) or "")
    world.kv.update_version(VAULT, "cmk", None, attributes={"exp": int(now) + DAY, "nbf": int(now) + 60})
    assert "not valid before" in (world.kv.key_problem(VAULT, "cmk", None, now) or "")
    assert world.kv.key_problem(VAULT, "cmk", None, now + 120) is None
    assert "expired" in (world.kv.key_problem(VAULT, "cmk", None, now + DAY) or "")
    assert "does not exist" in (world.kv.key_problem(VAULT, "other", None, now) or "")
    assert "has no version" in (world.kv.key_problem(VAULT, "cmk", "f" * 32, now) or "")
    with pytest.raises(SimError):
        world.kv.update_version(VAULT, "cmk", None, attributes={"enabled": "yes"})


def test_soft_delete_recover_and_purge_protection(world: World) -> None:
    vault = FakeVault()
    world.kv.create_key(VAULT, "cmk")
    key, soft = world.kv.delete_key(vault, "cmk")
    assert soft and key.scheduled_purge_date == key.deleted_date + 90 * DAY
    bundle = models.deleted_key_bundle(key, vault, "https://h:1")
    assert bundle["recoveryId"] == "https://h:1/deletedkeys/cmk"
    assert bundle["attributes"]["recoveryLevel"] == "Recoverable"
    assert "deleted" in (world.kv.key_problem(VAULT, "cmk", None, world.now()) or "")
    with pytest.raises(SimError) as exc:
        world.kv.create_key(VAULT, "cmk")
    assert _error(exc) == (409, "Conflict", "ObjectIsDeletedButRecoverable")
    with pytest.raises(SimError) as exc:
        world.kv.get_key(VAULT, "cmk")
    assert _error(exc)[0] == 404
    with pytest.raises(SimError) as exc:
        world.kv.purge(vault, "cmk")
    assert _error(exc)[:2] == (403, "Forbidden")
    assert world.kv.get_deleted(VAULT, "cmk") is key
    world.kv.recover(VAULT, "cmk")
    assert world.kv.key_problem(VAULT, "cmk", None, world.now()) is None
    world.kv.delete_key(vault, "cmk")
    world.kv.purge(FakeVault(enable_purge_protection=False), "cmk")
    assert world.kv.list_deleted(VAULT) == []
    world.kv.create_key(VAULT, "cmk")  # the name is free again


def test_hard_delete_without_soft_delete(world: World) -> None:
    vault = FakeVault(enable_soft_delete=False, enable_purge_protection=False)
    world.kv.create_key(VAULT, "cmk")
    key, soft = world.kv.delete_key(vault, "cmk")
    assert not soft and world.kv.list_deleted(VAULT) == []
    bundle = models.deleted_key_bundle(key, vault, "https://h:1", soft=soft)
    assert "recoveryId" not in bundle and bundle["attributes"]["recoveryLevel"] == "Purgeable"
    world.kv.create_key(VAULT, "cmk")


def test_deleted_keys_are_purged_after_retention(world: World) -> None:
    world.kv.create_key(VAULT, "cmk")
    world.kv.delete_key(FakeVault(soft_delete_retention_days=7), "cmk")
    world.clock.advance(6 * DAY)
    world.tick()
    assert [k.name for k in world.kv.list_deleted(VAULT)] == ["cmk"]
    world.clock.advance(2 * DAY)
    world.tick()
    assert world.kv.list_deleted(VAULT) == []


@pytest.mark.parametrize(
    ("soft", "days", "protect", "level"),
    [
        (False, 90, False, "Purgeable"),
        (True, 90, False, "Recoverable+Purgeable"),
        (True, 90, True, "Recoverable"),
        (True, 7, False, "CustomizedRecoverable+Purgeable"),
        (True, 30, True, "CustomizedRecoverable"),
    ],
)
def test_recovery_level(soft: bool, days: int, protect: bool, level: str) -> None:
    vault = FakeVault(
        enable_soft_delete=soft, soft_delete_retention_days=days, enable_purge_protection=protect
    )
    assert models.recovery_level(vault) == level


def test_rotation_policy_default_set_and_auto_rotation(world: World) -> None:
    first = world.kv.create_key(VAULT, "cmk")
    default = world.kv.get_rotation_policy(VAULT, "cmk")
    assert default["lifetimeActions"] == [
        {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}
    ]
    policy = {
        "lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "rotate"}}],
        "attributes": {"expiryTime": "P90D"},
    }
    stored = world.kv.set_rotation_policy(VAULT, "cmk", policy)
    assert stored["lifetimeActions"][0]["action"]["type"] == "Rotate"
    world.clock.advance(29 * DAY)
    world.tick()
    assert world.kv.latest_version(VAULT, "cmk") == first.version
    world.clock.advance(2 * DAY)
    world.tick()
    latest = world.kv.get_version(VAULT, "cmk")
    assert latest.version != first.version
    assert latest.exp is not None and abs(latest.exp - (world.now() + 90 * DAY)) < 5
    manual = world.kv.rotate(VAULT, "cmk")
    assert (
        world.kv.latest_version(VAULT, "cmk") == manual.version
        and len(world.kv.list_versions(VAULT, "cmk")) == 3
    )


@pytest.mark.parametrize(
    "policy",
    [
        {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P1D"}, "action": {"type": "Rotate"}}]},
        {"lifetimeActions": [{"trigger": {"timeAfterCreate": "90 days"}, "action": {"type": "Rotate"}}]},
        {"lifetimeActions": [{"trigger": {}, "action": {"type": "Rotate"}}]},
        {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Explode"}}]},
        {"lifetimeActions": [], "attributes": {"expiryTime": "P7D"}},
    ],
)
def test_invalid_rotation_policies_are_refused(world: World, policy: dict[str, Any]) -> None:
    world.kv.create_key(VAULT, "cmk")
    with pytest.raises(SimError) as exc:
        world.kv.set_rotation_policy(VAULT, "cmk", policy)
    assert _error(exc)[:2] == (400, "BadParameter")
    assert world.kv.store(VAULT).keys["cmk"].rotation_policy is None


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"])
def test_wrap_unwrap_round_trip(world: World, alg: str) -> None:
    version = world.kv.create_key(VAULT, "cmk")
    secret = os.urandom(32)
    now = world.now()
    _, wrapped = world.kv.crypto(VAULT, "cmk", version.version, "wrapkey", alg, secret, now)
    assert wrapped != secret and len(wrapped) == 256
    _, unwrapped = world.kv.crypto(VAULT, "cmk", version.version, "unwrapkey", alg, wrapped, now)
    assert unwrapped == secret
    other = world.kv.create_key(VAULT, "cmk")
    try:  # RSA1_5 may answer random bytes instead of failing (implicit rejection)
        _, wrong = world.kv.crypto(VAULT, "cmk", other.version, "unwrapkey", alg, wrapped, now)
    except SimError as exc:
        assert (exc.status, exc.code) == (400, "BadParameter")
    else:
        assert alg == "RSA1_5" and wrong != secret


def test_wrap_is_real_rsa_oaep_256(world: World) -> None:
    version = world.kv.create_key(VAULT, "cmk")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    wrapped = version.private_key.public_key().encrypt(b"k" * 32, oaep)
    _, out = world.kv.crypto(VAULT, "cmk", None, "unwrapkey", "RSA-OAEP-256", wrapped, world.now())
    assert out == b"k" * 32


def test_crypto_refused_on_unusable_keys(world: World) -> None:
    version = world.kv.create_key(VAULT, "cmk", key_ops=["wrapKey"])
    now = world.now()
    with pytest.raises(SimError) as exc:
        world.kv.crypto(VAULT, "cmk", None, "unwrapkey", "RSA-OAEP", b"x", now)
    assert _error(exc)[:2] == (400, "BadParameter")  # not in key_ops
    with pytest.raises(SimError) as exc:
        world.kv.crypto(VAULT, "cmk", None, "wrapkey", "A256KW", b"x", now)
    assert _error(exc)[:2] == (400, "BadParameter")
    version.enabled = False
    with pytest.raises(SimError) as exc:
        world.kv.crypto(VAULT, "cmk", None, "wrapkey", "RSA-OAEP", b"x", now)
    assert _error(exc) == (403, "Forbidden", "KeyDisabled")
    version.enabled, version.exp = True, int(now) - 1
    with pytest.raises(SimError) as exc:
        world.kv.crypto(VAULT, "cmk", None, "wrapkey", "RSA-OAEP", b"x", now)
    assert _error(exc) == (403, "Forbidden", "KeyExpired")
    version.exp, version.nbf = None, int(now) + 100
    with pytest.raises(SimError) as exc:
        world.kv.crypto(VAULT, "cmk", None, "wrapkey", "RSA-OAEP", b"x", now)
    assert _error(exc) == (403, "Forbidden", "KeyNotYetValid")


def _scenario_with_keys() -> dict[str, Any]:
    scenario = build_demo()
    scenario["vaults"][0]["keys"] = [
        {"name": "cmk", "versions": 3, "tags": {"env": "demo"}},
        {"name": "old", "expires_in_days": -1},
        {"name": "later", "not_before_in_days": 2, "kty": "RSA-HSM", "size": 3072},
        {"name": "off", "enabled": False},
    ]
    return scenario


def test_scenario_keys_load_with_pooled_material() -> None:
    world = World(_scenario_with_keys())
    now = world.now()
    versions = world.kv.list_versions(VAULT, "cmk")
    assert len(versions) == 3 and versions[0].created < versions[-1].created
    assert versions[-1].tags == {"env": "demo"}
    assert world.kv.key_problem(VAULT, "cmk", None, now) is None
    assert "expired" in (world.kv.key_problem(VAULT, "old", None, now) or "")
    assert "not valid before" in (world.kv.key_problem(VAULT, "later", None, now) or "")
    assert "disabled" in (world.kv.key_problem(VAULT, "off", None, now) or "")
    assert world.kv.get_version(VAULT, "later").kty == "RSA-HSM"
    moduli = {v.jwk("x")["n"] for v in versions}
    assert len(moduli) == 3
    world.reset()  # a reset reuses the pool: same material, new version ids
    again = world.kv.list_versions(VAULT, "cmk")
    assert [v.jwk("x")["n"] for v in again] == [v.jwk("x")["n"] for v in versions]
    assert again[0].version != versions[0].version
    fresh = world.kv.create_key(VAULT, "api")
    assert fresh.jwk("x")["n"] not in moduli


def test_snapshot_has_no_private_material() -> None:
    world = World(_scenario_with_keys())
    world.kv.delete_key(FakeVault(), "off")
    snap = world.kv.snapshot()
    text = json.dumps(snap)
    assert set(snap[VAULT]["keys"]) == {"cmk", "old", "later"}
    assert set(snap[VAULT]["deleted_keys"]) == {"off"}
    for forbidden in ("private", '"d"', '"p"', '"q"', '"n"', "BEGIN"):
        assert forbidden not in text
    assert len(snap[VAULT]["keys"]["cmk"]["versions"]) == 3


def test_drop_vault_forgets_its_keys(world: World) -> None:
    world.kv.create_key(VAULT, "cmk")
    world.kv.drop_vault(VAULT.upper())
    assert world.kv.latest_version(VAULT, "cmk") is None
    assert "does not exist" in (world.kv.key_problem(VAULT, "cmk", None, world.now()) or "")


def test_access_policy_authorization(world: World) -> None:
    caller = world.resolve_principal("keyvault-admin")
    assert caller is not None
    vault = FakeVault(permissions={KEYVAULT_ADMIN["object_id"]: {"get", "wrapkey"}})
    authorize(world, vault, caller, "keyvault.get_key", "cmk")
    authorize(world, vault, caller, "keyvault.wrap_key", "cmk")
    with pytest.raises(SimError) as exc:
        authorize(world, vault, caller, "keyvault.unwrap_key", "cmk")
    assert _error(exc) == (403, "Forbidden", "AccessDenied")
    message = exc.value.message
    assert "does not have keys unwrapKey permission on key vault 'kv-cmk-demo;location=westeurope'" in message
    assert f"oid={KEYVAULT_ADMIN['object_id']}" in message


def test_rbac_authorization(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = world.resolve_principal("keyvault-admin")
    assert caller is not None
    vault = FakeVault(enable_rbac_authorization=True, permissions={KEYVAULT_ADMIN["object_id"]: {"all"}})
    asked: list[tuple[str, str, str]] = []

    def has_data_action(oid: str, scope: str, action: str) -> bool:
        asked.append((oid, scope, action))
        return action == "Microsoft.KeyVault/vaults/keys/read"

    monkeypatch.setattr(world.arm, "has_data_action", has_data_action)
    authorize(world, vault, caller, "keyvault.get_key", "cmk")
    with pytest.raises(SimError) as exc:
        authorize(world, vault, caller, "keyvault.unwrap_key", "cmk")
    assert _error(exc) == (403, "Forbidden", "ForbiddenByRbac")
    assert "Action: 'Microsoft.KeyVault/vaults/keys/unwrap/action'" in exc.value.message
    assert asked[-1] == (
        KEYVAULT_ADMIN["object_id"],
        vault.id,
        "Microsoft.KeyVault/vaults/keys/unwrap/action",
    )


def test_demo_scenario_is_not_mutated_by_load() -> None:
    scenario = _scenario_with_keys()
    before = copy.deepcopy(scenario)
    World(scenario)
    assert scenario == before
