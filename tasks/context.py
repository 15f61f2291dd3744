"""The services a flow run works with, built once from its blocks, and the change a change flow carries them in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blocks.connections import AzureAdminConnection, PowerPlatformAdminConnection
from cmk.clients.arm import ArmService
from cmk.clients.keyvault import KeyVaultService
from cmk.clients.powerplatform import PowerPlatformService
from cmk.state.checkpoints import CheckpointStore
from cmk.state.journal import Journal


def state_dir() -> Path:
    """Where checkpoints and the journal live (CMK_STATE_DIR, default ./.state); share it between workers."""
    return Path(os.environ.get("CMK_STATE_DIR", ".state"))


def reports_dir() -> Path:
    """Where CSV reports are written (CMK_REPORTS_DIR, default ./reports)."""
    return Path(os.environ.get("CMK_REPORTS_DIR", "reports"))


@dataclass
class Services:
    """Clients for both administrator sides, the journal and this change's checkpoints."""

    keyvault: KeyVaultService
    arm: ArmService
    powerplatform: PowerPlatformService
    journal: Journal
    checkpoints: CheckpointStore
    admin_object_id: str | None


def connect(azure_block: str, powerplatform_block: str, *, change_id: str, flow: str) -> Services:
    """Load both connection blocks and build the services for one change."""
    azure = AzureAdminConnection.load(azure_block)
    powerplatform = PowerPlatformAdminConnection.load(powerplatform_block)
    journal = Journal(state_dir() / "journal.jsonl")
    return Services(
        keyvault=azure.key_vault_service(journal, change_id),
        arm=azure.arm_service(journal, change_id),
        powerplatform=powerplatform.power_platform_service(journal, change_id),
        journal=journal,
        checkpoints=CheckpointStore(state_dir() / "changes", change_id, flow),
        admin_object_id=powerplatform.admin_object_id,
    )


@dataclass(frozen=True)
class Change:
    """One change run: its flow, its change id, who asked for it, and the services it works with."""

    flow: str
    change_id: str
    requested_by: str
    services: Services

    def journal_entries(self) -> list[dict[str, Any]]:
        """This change's audit journal entries, in write order."""
        return self.services.journal.entries(change_id=self.change_id)


def open_change(
    azure_block: str, powerplatform_block: str, *, flow: str, change_id: str, requested_by: str
) -> Change:
    """Connect both sides for one change (its parameters already validated) and name it once for the whole run."""
    services = connect(azure_block, powerplatform_block, change_id=change_id, flow=flow)
    return Change(flow=flow, change_id=change_id, requested_by=requested_by, services=services)
