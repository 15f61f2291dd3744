"""The change plan: ordered writes, what is already in place, and nothing applied outside it."""

from __future__ import annotations

import pytest

from cmk.domain.rows import EnvironmentRow
from cmk.plans.change import ChangePlan, OutsidePlanError, PlannedWrite, environment_writes
from cmk.preflight import Finding


def plan() -> ChangePlan:
    p = ChangePlan("onboard", "CHG-1", "alice")
    p.add(PlannedWrite("arm", "register provider", "Microsoft.PowerPlatform", in_place=True))
    p.add(PlannedWrite("keyvault", "create key", "https://kv/keys/k", "RSA 2048"))
    p.writes += environment_writes("link", [EnvironmentRow("E1", name="Sales")])
    return p


def test_pending_leaves_out_what_is_in_place() -> None:
    assert [w.action for w in plan().pending] == ["create key", "link"]


def test_require_refuses_a_write_outside_the_plan() -> None:
    p = plan()
    p.require("link", "e1")  # ids compare case-insensitively
    with pytest.raises(OutsidePlanError, match="not in the approved plan"):
        p.require("link", "E2")
    with pytest.raises(OutsidePlanError):
        p.require("register provider", "Microsoft.PowerPlatform")  # in place: nothing to write


def test_markdown_numbers_every_write_and_marks_what_is_in_place() -> None:
    text = plan().writes_markdown()
    assert text.splitlines()[0].startswith("1. register provider") and "already in place" in text
    assert "3. link `E1`: Sales" in text
    assert ChangePlan("x", "c", "r").writes_markdown().startswith("_No write")


def test_blocking_findings() -> None:
    p = plan()
    p.findings = [Finding("A", "warning", "t", "m", "r"), Finding("B", "blocking", "t", "m", "r")]
    assert [f.code for f in p.blocking] == ["B"]
