"""End-to-end fixtures: the three cmk services built from settings_from_simulator, against the HTTPS simulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cmk.clients.arm import ArmService
from cmk.clients.keyvault import KeyVaultService
from cmk.clients.powerplatform import PowerPlatformService
from cmk.clients.settings import AzureSettings, PowerPlatformSettings, settings_from_simulator
from cmk.domain.models import PolicyInfo, VaultInfo
from cmk.domain.resource_ids import vault_id
from cmk.domain.roles import READER
from cmk.state.journal import Journal
from simulator.testing import RunningSimulator

# Fast lifecycles so end-to-end tests take seconds, not minutes.
FAST = {
    "provider_registration_seconds": 0.5,
    "feature_registration_seconds": 0.5,
    "deployment_seconds": 0.2,
    "link_seconds": 1.0,
    "unlink_seconds": 1.0,
    "governance_seconds": 0.5,
    "reenable_seconds": 0.5,
    "lock_detection_seconds": 0.5,
}
FINANCE = "c0de0e4a-7c2b-4e5f-9a10-0000000e0001"  # europe, Production, managed, Microsoft key
HR = "c0de0e4a-7c2b-4e5f-9a10-0000000e0002"  # europe, Production, managed
LEGACY_BYOK = "c0de0e4a-7c2b-4e5f-9a10-0000000e0005"  # europe, managed, legacy BYOK
MARKETING = "c0de0e4a-7c2b-4e5f-9a10-0000000e0006"  # europe, Sandbox, not managed
TRIAL = "c0de0e4a-7c2b-4e5f-9a10-0000000e0008"  # europe, Trial
US_OPERATIONS = "c0de0e4a-7c2b-4e5f-9a10-0000000a0001"  # unitedstates, managed


@dataclass
class Services:
    """The three clients of one test, sharing a journal."""

    sim: RunningSimulator
    azure: AzureSettings
    pp: PowerPlatformSettings
    journal: Journal
    kv: KeyVaultService
    arm: ArmService
    bap: PowerPlatformService

    @property
    def vault_id(self) -> str:
        """The demo vault's id."""
        return vault_id(self.azure.subscription_id, "rg-cmk", "kv-cmk-demo")


@pytest.fixture
def svc(fresh_sim: RunningSimulator, tmp_path: Path) -> Iterator[Services]:
    """Services against a freshly reset simulator, with fast lifecycles."""
    fresh_sim.control.settings(**FAST)
    azure, pp = settings_from_simulator(fresh_sim.endpoints)
    journal = Journal(tmp_path / "journal.jsonl")
    kv, arm, bap = (
        KeyVaultService(azure, journal),
        ArmService(azure, journal),
        PowerPlatformService(pp, journal),
    )
    try:
        yield Services(fresh_sim, azure, pp, journal, kv, arm, bap)
    finally:
        kv.close()
        arm.close()
        bap.close()


def onboard(
    s: Services, *, grant: bool = True, reader: bool = True, name: str = "ep-eu"
) -> tuple[VaultInfo, PolicyInfo]:
    """Key, provider, policy and (optionally) the grants: the state a link needs."""
    vault = s.kv.get_vault(s.vault_id)
    s.kv.ensure_key(vault.uri, "cmk")
    s.arm.ensure_provider_registered(poll=0.2)
    policy = s.arm.deploy_enterprise_policy("rg-cmk", name, "europe", vault.id, "cmk")
    policy = s.arm.wait_for_policy_identity(policy.id, timeout=30, poll=0.2)
    if grant:
        s.kv.ensure_access_policy(vault.id, policy.principal_id or "")
    if reader:
        s.arm.ensure_role_assignment(policy.id, s.pp.admin_object_id or "", READER)
    return s.kv.get_vault(vault.id), s.arm.get_policy(policy.id)
