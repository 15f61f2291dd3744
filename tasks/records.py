"""The tool's own records read back: the grants the journal says we made, the retirement registers."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from cmk.inventory.drift import ExpectedGrant, expected_grants
from cmk.state.key_retirements import RETIREMENTS_FILE, Retirement, RetirementRegister
from cmk.state.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from tasks.context import Services, state_dir


@task(name="read-journal-grants", cache_policy=NO_CACHE)
def read_journal_grants(services: Services) -> list[ExpectedGrant]:
    """The grants the journal says are in place (or removed), replayed from every change."""
    return expected_grants(services.journal.entries())


@task(name="read-retirements", cache_policy=NO_CACHE)
def read_retirements() -> list[Retirement]:
    """The key-version retirement register under CMK_STATE_DIR (empty when no rotation recorded one)."""
    return RetirementRegister(state_dir() / RETIREMENTS_FILE).entries()


@task(name="read-policy-retirements", cache_policy=NO_CACHE)
def read_policy_retirements() -> list[PolicyRetirement]:
    """The policy retirement register under CMK_STATE_DIR (empty when no policy swap recorded one)."""
    return PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).entries()


@task(name="read-retirement-registers", cache_policy=NO_CACHE)
def read_retirement_registers(
    rotation_change_id: str = "",
) -> tuple[list[Retirement], list[PolicyRetirement]]:
    """The key versions and the not yet retired policies recorded by rotations (of one rotation when given)."""
    keys = [
        r
        for r in RetirementRegister(state_dir() / RETIREMENTS_FILE).entries()
        if not rotation_change_id or r.change_id == rotation_change_id
    ]
    policies = [
        p
        for p in PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).entries()
        if not p.retired and (not rotation_change_id or p.change_id == rotation_change_id)
    ]
    return keys, policies
