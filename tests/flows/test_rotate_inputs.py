"""The rotate flow refuses bad parameters before reading or changing anything."""

from __future__ import annotations

import pytest

from flows.rotate import validate_inputs

POLICY = "/subscriptions/a3c1e5f7-2b4d-4e6f-8a0c-9d1e3f5a7b20/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/ep"


def check(**overrides: object) -> None:
    args = {
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
    validate_inputs(**{**args, **overrides})


def test_valid_parameters_pass() -> None:
    check()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fanout": "per-environment", "concurrency": 100}, "per-wave"),
        ({"mode": "key-version", "environments": ["x"]}, "policy-swap"),
        ({"environments": ["x"], "whole_tenant": True}, "not both"),
        ({"requested_by": " "}, "requested_by"),
        ({"change_id": "bad id!"}, "change_id"),
        ({"swap_method": "teleport"}, "swap_method"),
    ],
)
def test_bad_parameters_are_refused_with_what_to_do(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check(**overrides)
