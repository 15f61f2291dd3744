"""What a rotation records for the `retire` flow: when the replaced key version or policy may be retired."""

from datetime import datetime

from cmk.domain import grace
from cmk.domain.models import PolicyInfo
from cmk.plans.rotation import KeyVersionPlan, SwapPlan, SwapState
from cmk.state.key_retirements import RETIREMENTS_FILE, Retirement, RetirementRegister
from cmk.state.policy_retirements import POLICY_RETIREMENTS_FILE, PolicyRetirement, PolicyRetirementRegister
from tasks.context import Change, state_dir


def record_key_version_retirement(change: Change, kv: KeyVersionPlan) -> datetime:
    """Record when the previous version may be disabled (register for `retire`, and the change's checkpoint)."""
    until = grace.retire_after(grace.utc_now(), grace.KEY_VERSION_GRACE_DAYS)
    RetirementRegister(state_dir() / RETIREMENTS_FILE).record(
        Retirement(kv.vault_uri, kv.key_name, kv.previous, until, change.change_id, grace.utc_now())
    )
    change.services.checkpoints.finish_step(
        "retirement",
        {
            "kind": "key-version",
            "vault_uri": kv.vault_uri,
            "key_name": kv.key_name,
            "version": kv.previous,
            "retire_after": until.isoformat(),
            "register": str(state_dir() / RETIREMENTS_FILE),
        },
    )
    return until


def record_policy_retirement(
    change: Change, swap: SwapPlan, state: SwapState, new_policy: PolicyInfo
) -> PolicyRetirement:
    """Record when the old policy, its key and its access may be retired (register and checkpoint)."""
    old = state.old
    until = grace.retire_after(grace.utc_now(), grace.POLICY_GRACE_DAYS)
    entry = PolicyRetirementRegister(state_dir() / POLICY_RETIREMENTS_FILE).record(
        PolicyRetirement(
            change_id=change.change_id,
            policy_id=old.id,
            system_id=old.system_id or "",
            principal_id=old.principal_id or "",
            vault_id=state.old_vault.id,
            key_name=old.key_name or "",
            new_policy_id=new_policy.id,
            new_principal_id=new_policy.principal_id or "",
            new_vault_id=state.new_vault.id,
            retire_after=until,
            recorded_at=grace.utc_now(),
        )
    )
    change.services.checkpoints.finish_step(
        "retirement",
        {
            "kind": "policy",
            "policy_id": old.id,
            "retire_after": entry.retire_after.isoformat(),
            "register": str(state_dir() / POLICY_RETIREMENTS_FILE),
        },
    )
    return entry
