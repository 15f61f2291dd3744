"""The rotate flow refuses bad parameters before reading or changing anything."""

from __future__ import annotations

from typing import Any

import pytest

from cmk.preflight.parameters import InvalidParameterError
from flows.rotate import default_name, rotate, validate_inputs
from simulator.testing import RunningSimulator
from tests.flows import rotation_support
from tests.flows.rotation_support import policy_id

onboarded_sim = rotation_support.onboarded_sim
rotation_env = rotation_support.rotation_env

POLICY = "/subscriptions/a3c1e5f7-2b4d-4e6f-8a0c-9d1e3f5a7b20/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/ep"
ENV = "c0de0e4a-7c2b-4e5f-9a10-0000000a0001"


def check(**overrides: object) -> Any:
    args: dict[str, Any] = {
        "change_id": "CHG-1",
        "requested_by": "alice",
        "policy_id": POLICY,
        "mode": "policy-swap",
        "new_vault_id": "",
        "swap_method": "link",
        "concurrency": 4,
        "canary_size": 1,
        "failure_threshold": 1,
        "environments": [],
        "whole_tenant": False,
        "fanout": "auto",
    }
    return validate_inputs(**{**args, **overrides})


def test_valid_parameters_pass() -> None:
    check()


def test_duplicate_environments_are_moved_once_with_a_note() -> None:
    inputs = check(environments=[ENV, ENV.upper(), ENV])
    assert inputs.environments == [ENV]
    assert len(inputs.notes) == 1 and "3 times" in inputs.notes[0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fanout": "per-environment", "concurrency": 100}, "per-wave"),
        ({"mode": "key-version", "environments": [ENV]}, "policy-swap"),
        ({"environments": [ENV], "whole_tenant": True}, "not both"),
        ({"requested_by": " "}, "requested_by"),
        ({"change_id": "bad id!"}, "change_id"),
        ({"swap_method": "teleport"}, "swap_method"),
        ({"fanout": "sideways"}, "fanout"),
        ({"mode": "rekey"}, "mode"),
        ({"concurrency": 0}, "concurrency"),
        ({"canary_size": -1}, "canary_size"),
        ({"new_policy_name": "ep-ü"}, "new_policy_name"),
        ({"new_policy_name": "x" * 65}, "new_policy_name"),
        ({"new_key_name": "bad key"}, "new_key_name"),
        ({"resource_group": "rg/cmk"}, "resource_group"),
        ({"new_vault_id": "kv"}, "new_vault_id"),
        ({"environments": ["x"]}, "environments"),
        ({"powerplatform_admin_object_id": "admin"}, "powerplatform_admin_object_id"),
        ({"operation_timeout_seconds": 0}, "operation_timeout_seconds"),
        ({"operation_timeout_seconds": -10}, "operation_timeout_seconds"),
        ({"operation_timeout_seconds": 8 * 86400}, "operation_timeout_seconds"),
        ({"policy_id": "ep-cmk-eu"}, "policy_id"),
    ],
)
def test_bad_parameters_are_refused_with_what_to_do(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        check(**overrides)


def test_every_refusal_is_reported_at_once() -> None:
    with pytest.raises(InvalidParameterError) as raised:
        check(new_key_name="bad key", operation_timeout_seconds=0, environments=["x"])
    assert len(raised.value.problems) == 3


def test_default_names_fit_the_naming_rules() -> None:
    assert default_name("ep-cmk-eu", "CHG_2026.1") == "ep-cmk-eu-CHG-2026-1"
    long_change = "C" + "1" * 99
    name = default_name("ep-" + "p" * 60, "CHG-2026-0042", 64)
    assert len(name) <= 64 and name.endswith("-CHG-2026-0042")
    assert len(default_name("ep", long_change, 64)) <= 64
    check(change_id=long_change)  # the default new policy name is validated too, and fits


@pytest.mark.parametrize(
    "overrides",
    [
        {"new_policy_name": "ep-ü"},
        {"new_key_name": "bad key"},
        {"operation_timeout_seconds": 0},
        {"operation_timeout_seconds": -10},
        {"environments": ["x"]},
        {"new_vault_id": "kv"},
    ],
    ids=["policy-name", "key-name", "timeout-0", "timeout-negative", "environment-id", "vault-id"],
)
def test_malformed_inputs_are_refused_before_any_request(
    rotation_env: RunningSimulator, overrides: dict[str, Any]
) -> None:
    since = rotation_env.control.last_seq()
    state = rotate(
        change_id="CHG-BAD",
        requested_by="alice",
        policy_id=policy_id(rotation_env),
        mode="policy-swap",
        **overrides,
        return_state=True,
    )
    assert state.is_failed()
    assert "Invalid parameter" in state.message and "Nothing was read or changed" in state.message
    assert rotation_env.control.requests(since=since) == []  # not a single request, not even a read
