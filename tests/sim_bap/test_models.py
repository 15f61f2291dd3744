"""BAP models and key-access health, without HTTP, on simulated time (ARM and Key Vault faked)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from simulator.bap.models import BapState, same_geo
from simulator.core.errors import SimError
from simulator.core.identities import Identity
from simulator.health import policy_health_status, policy_key_problems
from simulator.scenarios import load_scenario
from simulator.scenarios.demo import (
    BYOK_ENVIRONMENTS,
    DEMO_ENVIRONMENTS,
    EUROPE_ELIGIBLE,
    POWERPLATFORM_ADMIN,
)
from simulator.world import World
from tests.sim_bap.fakes import READ, FakeArm, FakeKv, FakePolicy, FakeVault

FINANCE, HR, SALES, DEV = EUROPE_ELIGIBLE
ERP, US_CLAIMS = BYOK_ENVIRONMENTS
MARKETING = DEMO_ENVIRONMENTS[5]["id"]
TRIAL = DEMO_ENVIRONMENTS[7]["id"]
TEAMS = DEMO_ENVIRONMENTS[8]["id"]
US_OPS = DEMO_ENVIRONMENTS[9]["id"]
MI_EU = "99999999-0000-4000-8000-000000000001"
MI_EU2 = "99999999-0000-4000-8000-000000000002"


class Tenant:
    """A demo world whose ARM and Key Vault are fakes the test controls."""

    def __init__(self) -> None:
        self.world = World(load_scenario("demo"))
        self.arm = FakeArm()
        self.kv = FakeKv()
        self.world.arm = self.arm  # type: ignore[assignment]
        self.world.kv = self.kv  # type: ignore[assignment]
        self.world.settings.update({"link_seconds": 10, "unlink_seconds": 10, "lock_detection_seconds": 5})
        self.admin = self.world.identities.by_name("powerplatform-admin")
        assert self.admin is not None
        self.vault = FakeVault("kv-cmk-demo")
        self.arm.vaults.append(self.vault)
        self.policy = self.add_policy("ep-eu", "europe", MI_EU, "44444444-4444-4444-4444-444444444444")

    @property
    def bap(self) -> BapState:
        """The BAP state under test."""
        return self.world.bap

    def add_policy(self, name: str, location: str, principal: str, guid: str, **kw: object) -> FakePolicy:
        """A healthy policy the admin can read."""
        policy = FakePolicy(name, location, principal, self.vault, guid=guid, **kw)  # type: ignore[arg-type]
        self.arm.policies.append(policy)
        self.vault.permissions[principal] = {"get", "wrapkey", "unwrapkey"}
        self.arm.actions.add((self.admin.object_id, policy.id.lower(), READ))
        return policy

    def advance(self, seconds: float) -> None:
        """Move simulated time and settle."""
        self.world.clock.advance(seconds)
        self.world.tick()

    def env(self, env_id: str) -> dict:
        """The rendered environment."""
        return self.bap.render(self.bap.get(env_id))

    def linked(self, env_id: str) -> None:
        """Link env to the default policy and let it finish."""
        op = self.bap.link(env_id, self.policy.system_id, self.admin)
        self.advance(11)
        assert self.bap.get_operation(op.id).state == "Succeeded"


@pytest.fixture
def t() -> Iterator[Tenant]:
    """A fresh fake tenant."""
    yield Tenant()


def code_of(exc: pytest.ExceptionInfo[SimError]) -> tuple[int, str]:
    """(status, code) of a SimError."""
    return exc.value.status, exc.value.code


# -- scenario ----------------------------------------------------------------------------------
def test_demo_has_twelve_environments_and_the_documented_eligible_four(t: Tenant) -> None:
    envs = t.bap.list_environments()
    assert len(envs) == 12
    eligible = [
        e.id
        for e in envs
        if e.location == "europe"
        and e.managed
        and e.sku not in ("Trial", "Teams")
        and e.encryption == "microsoft"
    ]
    assert eligible == EUROPE_ELIGIBLE
    assert {e.location for e in envs} == {"europe", "unitedstates"}
    assert {e.sku for e in envs} == {"Production", "Sandbox", "Developer", "Default", "Trial", "Teams"}


def test_environment_json_shape(t: Tenant) -> None:
    body = t.env(FINANCE)
    assert body["id"] == f"/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments/{FINANCE}"
    assert body["name"] == FINANCE and body["location"] == "europe"
    props = body["properties"]
    assert props["azureRegion"] == "westeurope" and props["environmentSku"] == "Production"
    assert props["states"]["runtime"]["id"] == "Enabled" and props["states"]["management"]["id"] == "Ready"
    assert props["protectionStatus"] == {"keyManagedBy": "Microsoft"}
    assert props["governanceConfiguration"]["protectionLevel"] == "Standard"
    assert "enterprisePolicies" not in props
    assert t.env(MARKETING)["properties"]["governanceConfiguration"]["protectionLevel"] == "Basic"
    legacy = t.bap.render(t.bap.get(FINANCE), legacy=True)
    assert legacy["id"] == f"/providers/Microsoft.BusinessAppPlatform/environments/{FINANCE}"


def test_byok_environments_are_recognisable(t: Tenant) -> None:
    for env_id in BYOK_ENVIRONMENTS:
        props = t.env(env_id)["properties"]
        assert props["protectionStatus"] == {"keyManagedBy": "Customer", "keySource": "Byok"}
        assert "enterprisePolicies" not in props


def test_scenario_cmk_environment_is_loaded_linked(t: Tenant) -> None:
    scenario = load_scenario("demo")
    scenario["enterprise_policies"] = [{"name": "ep-eu", "resource_group": "rg-cmk"}]
    scenario["environments"][0].update(encryption="cmk", policy="ep-eu")
    t.bap.load(scenario)
    cmk = t.env(FINANCE)["properties"]["enterprisePolicies"]["customerManagedKeys"]
    assert cmk == {
        "policyId": "44444444-4444-4444-4444-444444444444",
        "location": "europe",
        "id": t.policy.id,
        "systemId": t.policy.system_id,
        "linkStatus": "Linked",
    }
    assert t.bap.environments_linked_to(t.policy.system_id.upper()) == [FINANCE]
    scenario["environments"][0]["policy"] = "nope"
    with pytest.raises(ValueError, match="nope"):
        t.bap.load(scenario)


def test_large_scenario_is_fast_and_deterministic() -> None:
    started = time.perf_counter()
    world = World(load_scenario("large:1000"))
    assert time.perf_counter() - started < 1.0
    envs = world.bap.list_environments()
    assert len(envs) == 1000
    assert len({e.location for e in envs}) >= 4
    assert sum(e.managed for e in envs) > 600
    assert any(e.sku in ("Trial", "Teams") for e in envs) and any(e.encryption == "byok" for e in envs)
    again = load_scenario("large:1000")["environments"]
    assert [e.id for e in envs] == [e["id"] for e in again]
    assert load_scenario("large:10")["environments"] == again[:10]


def test_same_geo_pairs() -> None:
    assert same_geo("Europe", "europe")
    assert same_geo("unitedstates", "UnitedStatesEUAP")
    assert same_geo("uk", "unitedkingdom")
    assert not same_geo("europe", "unitedstates")


# -- link lifecycle ----------------------------------------------------------------------------
def test_link_goes_through_stages_and_ends_linked(t: Tenant) -> None:
    op = t.bap.link(FINANCE, t.policy.system_id, t.admin)
    assert (op.state, op.type_id) == ("NotStarted", "NewCustomerManagedKey")
    props = t.env(FINANCE)["properties"]
    assert props["states"]["runtime"]["id"] == "Disabled"
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Linking"
    assert props["protectionStatus"]["keyManagedBy"] == "Microsoft"
    t.advance(2)  # past NotStarted (1 s) and inside Validate
    body = t.bap.render_operation(op)
    assert body["state"]["id"] == "Running"
    assert [s["state"]["id"] for s in body["stages"]] == ["Running", "NotStarted", "NotStarted", "NotStarted"]
    assert t.bap.environments_linked_to(t.policy.system_id) == [FINANCE]
    t.advance(9)
    body = t.bap.render_operation(op)
    assert body["state"]["id"] == "Succeeded" and "error" not in body
    assert [s["state"]["id"] for s in body["stages"]] == ["Succeeded"] * 4
    props = t.env(FINANCE)["properties"]
    assert props["states"]["runtime"] == {
        "runtimeReasonCode": "NotSpecified",
        "requestedBy": {"displayName": "SYSTEM", "type": "NotSpecified"},
        "id": "Enabled",
    }
    assert props["protectionStatus"]["keyManagedBy"] == "Customer"
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Linked"


def test_any_operation_makes_the_environment_busy(t: Tenant) -> None:
    t.bap.link(FINANCE, t.policy.system_id, t.admin)
    for attempt in (
        lambda: t.bap.link(FINANCE, t.policy.system_id, t.admin),
        lambda: t.bap.unlink(FINANCE, t.policy.system_id, t.admin),
        lambda: t.bap.set_governance(FINANCE, "Basic", t.admin),
    ):
        with pytest.raises(SimError) as exc:
            attempt()
        assert code_of(exc) == (409, "OperationNotStartable")
        assert f"active lifecycle operation on the environment '{FINANCE}'" in exc.value.message
    t.bap.link(HR, t.policy.system_id, t.admin)  # other environments are not blocked
    t.advance(11)
    t.bap.unlink(FINANCE, t.policy.system_id, t.admin)


@pytest.mark.parametrize(
    ("env_id", "setup", "expected"),
    [
        (FINANCE, "unknown", (400, "EnterprisePolicyNotFound")),
        (FINANCE, "kind", (400, "EnterprisePolicyKindMismatch")),
        (US_OPS, None, (400, "EnterprisePolicyLocationMismatch")),
        (TRIAL, None, (400, "EnvironmentSkuNotSupported")),
        (TEAMS, None, (400, "EnvironmentSkuNotSupported")),
        (MARKETING, None, (400, "ManagedEnvironmentRequired")),
        (FINANCE, "no-reader", (403, "EnterprisePolicyAccessDenied")),
        ("00000000-0000-0000-0000-00000000dead", None, (404, "EnvironmentNotFound")),
    ],
)
def test_link_rules_refused_at_request(t: Tenant, env_id: str, setup: str | None, expected: tuple) -> None:
    system_id = t.policy.system_id
    if setup == "unknown":
        system_id = system_id.replace("4444", "5555")
    elif setup == "kind":
        t.policy.kind = "NetworkInjection"
    elif setup == "no-reader":
        t.arm.actions.clear()
    t.bap.load(load_scenario("demo"))
    with pytest.raises(SimError) as exc:
        t.bap.link(env_id, system_id, t.admin)
    assert code_of(exc) == expected
    assert t.bap.environments_linked_to(t.policy.system_id) == []


def test_geo_compatibility_pair_is_accepted(t: Tenant) -> None:
    uk = t.add_policy("ep-uk", "unitedkingdom", MI_EU2, "66666666-6666-4666-8666-666666666666")
    scenario = load_scenario("demo")
    scenario["environments"][0]["location"] = "uk"
    t.bap.load(scenario)
    assert t.bap.link(FINANCE, uk.system_id, t.admin).state == "NotStarted"


def test_link_without_key_access_fails_and_keeps_previous_key(t: Tenant) -> None:
    t.vault.permissions[MI_EU] = {"get", "unwrapkey"}
    op = t.bap.link(FINANCE, t.policy.system_id, t.admin)
    t.advance(30)
    body = t.bap.render_operation(op)
    assert body["state"]["id"] == "Failed"
    assert [s["state"]["id"] for s in body["stages"]] == ["Failed", "NotStarted", "NotStarted", "NotStarted"]
    assert "wrapkey" in body["error"]["message"]
    props = t.env(FINANCE)["properties"]
    assert props["protectionStatus"]["keyManagedBy"] == "Microsoft"
    assert props["states"]["runtime"]["id"] == "Enabled"
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Failed"
    assert t.bap.environments_linked_to(t.policy.system_id) == []
    t.vault.permissions[MI_EU] = {"get", "wrapkey", "unwrapkey"}  # fixed: the rerun succeeds
    t.linked(FINANCE)
    assert t.env(FINANCE)["properties"]["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Linked"


def test_expired_key_fails_the_link(t: Tenant) -> None:
    t.kv.problems[("kv-cmk-demo", "cmk")] = "the key 'cmk' is expired"
    op = t.bap.link(FINANCE, t.policy.system_id, t.admin)
    t.advance(30)
    assert op.state == "Failed" and "expired" in (op.error or {})["message"]


def test_swap_moves_to_the_new_policy(t: Tenant) -> None:
    t.linked(FINANCE)
    second = t.add_policy("ep-eu-2", "europe", MI_EU2, "77777777-7777-4777-8777-777777777777")
    op = t.bap.link(FINANCE, second.system_id, t.admin)
    assert op.type_id == "RotateCustomerManagedKey"
    cmk = t.env(FINANCE)["properties"]["enterprisePolicies"]["customerManagedKeys"]
    assert (cmk["systemId"], cmk["linkStatus"]) == (second.system_id, "Linking")
    assert t.bap.environments_linked_to(t.policy.system_id) == [FINANCE]
    assert t.bap.environments_linked_to(second.system_id) == [FINANCE]
    t.advance(11)
    assert op.state == "Succeeded"
    cmk = t.env(FINANCE)["properties"]["enterprisePolicies"]["customerManagedKeys"]
    assert (cmk["systemId"], cmk["linkStatus"]) == (second.system_id, "Linked")
    assert t.bap.environments_linked_to(t.policy.system_id) == []


def test_failed_swap_stays_on_the_old_policy(t: Tenant) -> None:
    t.linked(FINANCE)
    second = t.add_policy("ep-eu-2", "europe", MI_EU2, "77777777-7777-4777-8777-777777777777")
    t.vault.permissions[MI_EU2] = set()
    op = t.bap.link(FINANCE, second.system_id, t.admin)
    t.advance(11)
    assert op.state == "Failed"
    cmk = t.env(FINANCE)["properties"]["enterprisePolicies"]["customerManagedKeys"]
    assert (cmk["systemId"], cmk["linkStatus"]) == (t.policy.system_id, "Linked")


def test_linking_the_linked_policy_again_is_a_quick_no_op(t: Tenant) -> None:
    t.linked(FINANCE)
    op = t.bap.link(FINANCE, t.policy.system_id.upper(), t.admin)
    assert op.state == "Succeeded"
    assert t.env(FINANCE)["properties"]["states"]["runtime"]["id"] == "Enabled"


def test_byok_environment_moves_to_cmk_by_linking(t: Tenant) -> None:
    t.linked(ERP)
    props = t.env(ERP)["properties"]
    assert props["protectionStatus"] == {"keyManagedBy": "Customer"}
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Linked"


def test_unlink_returns_to_microsoft(t: Tenant) -> None:
    t.linked(FINANCE)
    with pytest.raises(SimError) as exc:
        t.bap.unlink(
            FINANCE, "/regions/europe/providers/Microsoft.PowerPlatform/enterprisePolicies/x", t.admin
        )
    assert code_of(exc) == (400, "EnterprisePolicyNotLinked")
    op = t.bap.unlink(FINANCE, t.policy.system_id, t.admin)
    assert op.type_id == "RevertToMicrosoftKey"
    props = t.env(FINANCE)["properties"]
    assert props["enterprisePolicies"]["customerManagedKeys"]["linkStatus"] == "Unlinking"
    assert props["states"]["runtime"]["id"] == "Disabled"
    assert t.bap.environments_linked_to(t.policy.system_id) == [FINANCE]
    t.advance(11)
    props = t.env(FINANCE)["properties"]
    assert op.state == "Succeeded"
    assert props["protectionStatus"] == {"keyManagedBy": "Microsoft"} and "enterprisePolicies" not in props
    assert t.bap.environments_linked_to(t.policy.system_id) == []
    with pytest.raises(SimError):
        t.bap.unlink(FINANCE, t.policy.system_id, t.admin)


# -- governance ---------------------------------------------------------------------------------
def test_governance_makes_an_environment_managed(t: Tenant) -> None:
    op = t.bap.set_governance(MARKETING, "Standard", t.admin)
    assert t.env(MARKETING)["properties"]["governanceConfiguration"]["protectionLevel"] == "Basic"
    t.advance(3)
    assert op.state == "Succeeded"
    assert t.env(MARKETING)["properties"]["governanceConfiguration"]["protectionLevel"] == "Standard"
    with pytest.raises(SimError) as exc:
        t.bap.set_governance(MARKETING, "Standard", t.admin)
    assert code_of(exc) == (409, "OperationNotStartable")
    with pytest.raises(SimError) as exc:
        t.bap.set_governance(TEAMS, "Standard", t.admin)
    assert code_of(exc) == (400, "EnvironmentSkuNotSupported")
    t.linked(FINANCE)
    with pytest.raises(SimError) as exc:
        t.bap.set_governance(FINANCE, "Basic", t.admin)
    assert code_of(exc) == (400, "ManagedEnvironmentRequired")


# -- lock and re-enable ---------------------------------------------------------------------------
def test_revoked_access_locks_after_the_detection_delay_and_needs_an_explicit_enable(t: Tenant) -> None:
    t.linked(FINANCE)
    t.linked(HR)
    t.vault.permissions[MI_EU] = {"get"}
    t.advance(2)
    assert t.env(FINANCE)["properties"]["states"]["runtime"]["id"] == "Enabled"
    assert policy_health_status(t.world, t.policy) == "Unhealthy"
    t.advance(4)
    for env_id in (FINANCE, HR):
        runtime = t.env(env_id)["properties"]["states"]["runtime"]
        assert (runtime["id"], runtime["runtimeReasonCode"]) == ("Disabled", "CustomerManagedKeyInaccessible")
    assert t.env(SALES)["properties"]["states"]["runtime"]["id"] == "Enabled"
    with pytest.raises(SimError) as exc:
        t.bap.enable(FINANCE, t.admin)
    assert code_of(exc) == (400, "CustomerManagedKeyInaccessible")
    t.vault.permissions[MI_EU] = {"get", "wrapkey", "unwrapkey"}
    t.advance(60)
    assert (
        t.env(FINANCE)["properties"]["states"]["runtime"]["id"] == "Disabled"
    )  # restore alone does not enable
    op = t.bap.enable(FINANCE, t.admin)
    assert op.type_id == "EnableEnvironment"
    t.advance(3)
    assert op.state == "Succeeded"
    assert t.env(FINANCE)["properties"]["states"]["runtime"]["id"] == "Enabled"
    assert t.env(HR)["properties"]["states"]["runtime"]["id"] == "Disabled"
    with pytest.raises(SimError) as exc:
        t.bap.enable(FINANCE, t.admin)
    assert code_of(exc) == (409, "EnvironmentNotDisabled")


def test_deleted_policy_locks_its_environments(t: Tenant) -> None:
    t.linked(FINANCE)
    t.arm.policies.remove(t.policy)
    t.advance(6)
    assert (
        t.env(FINANCE)["properties"]["states"]["runtime"]["runtimeReasonCode"]
        == "CustomerManagedKeyInaccessible"
    )


def test_short_outage_inside_the_delay_does_not_lock(t: Tenant) -> None:
    t.linked(FINANCE)
    t.vault.permissions[MI_EU] = set()
    t.advance(3)
    t.vault.permissions[MI_EU] = {"get", "wrapkey", "unwrapkey"}
    t.advance(3)
    t.advance(10)
    assert t.env(FINANCE)["properties"]["states"]["runtime"]["id"] == "Enabled"


# -- health ----------------------------------------------------------------------------------------
def test_health_problems_cover_each_cause(t: Tenant) -> None:
    assert policy_key_problems(t.world, t.policy) == []
    assert policy_health_status(t.world, t.policy) == "Healthy"
    assert policy_key_problems(t.world, None) == ["the enterprise policy does not exist"]
    t.policy.principal_id = ""
    assert "no managed identity" in policy_key_problems(t.world, t.policy)[0]
    t.policy.principal_id = MI_EU
    t.vault.permissions[MI_EU] = {"get", "wrapkey"}
    assert "unwrapkey" in policy_key_problems(t.world, t.policy)[0]
    t.vault.permissions[MI_EU] = {"get", "wrapkey", "unwrapkey"}
    t.kv.problems[("kv-cmk-demo", "cmk")] = "the key 'cmk' is disabled"
    assert policy_key_problems(t.world, t.policy) == ["the key 'cmk' is disabled"]
    t.kv.problems.clear()
    t.vault.network_problem = "the key vault 'kv-cmk-demo' cannot be reached: its firewall denies by default"
    assert policy_key_problems(t.world, t.policy) == [t.vault.network_problem]
    assert policy_health_status(t.world, t.policy) == "Unhealthy"
    t.vault.deleted = True
    assert "soft-deleted" in policy_key_problems(t.world, t.policy)[0]


def test_health_on_an_rbac_vault_needs_the_three_data_actions(t: Tenant) -> None:
    t.vault.enable_rbac_authorization = True
    actions = [
        "Microsoft.KeyVault/vaults/keys/read",
        "Microsoft.KeyVault/vaults/keys/wrap/action",
        "Microsoft.KeyVault/vaults/keys/unwrap/action",
    ]
    for action in actions[:2]:
        t.arm.data_actions.add((MI_EU, t.vault.id.lower(), action))
    problems = policy_key_problems(t.world, t.policy)
    assert len(problems) == 1 and "unwrap/action" in problems[0] and "wrap/action," not in problems[0]
    t.arm.data_actions.add((MI_EU, t.vault.id.lower(), actions[2]))
    assert policy_key_problems(t.world, t.policy) == []


def test_enable_of_an_admin_disabled_environment(t: Tenant) -> None:
    scenario = load_scenario("demo")
    scenario["environments"][1]["runtime"] = "Disabled"
    t.bap.load(scenario)
    assert t.env(HR)["properties"]["states"]["runtime"]["runtimeReasonCode"] == "AdminDisabled"
    op = t.bap.enable(HR, t.admin)
    t.advance(3)
    assert op.state == "Succeeded" and t.env(HR)["properties"]["states"]["runtime"]["id"] == "Enabled"


def test_requested_by_names_the_caller(t: Tenant) -> None:
    op = t.bap.link(FINANCE, t.policy.system_id, t.admin)
    body = t.bap.render_operation(op)
    assert body["requestedBy"]["id"] == POWERPLATFORM_ADMIN["object_id"]
    assert body["links"]["environment"]["path"].endswith(FINANCE)
    assert isinstance(t.admin, Identity)


def test_scenario_cmk_environment_finds_its_policy_by_name_without_a_resource_group() -> None:
    from simulator.scenarios.demo import build_demo
    from simulator.world import World

    scenario = build_demo()
    scenario["vaults"][0]["keys"] = [{"name": "cmk"}]
    scenario["enterprise_policies"] = [
        {"name": "ep1", "location": "europe", "vault": "kv-cmk-demo", "key": "cmk"}
    ]
    env_id = scenario["environments"][0]["id"]
    scenario["environments"][0].update(encryption="cmk", policy="ep1")
    world = World(scenario)
    policy = next(iter(world.arm.policies.values()))
    assert world.bap.environments_linked_to(policy.system_id) == [env_id]
