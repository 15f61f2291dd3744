"""`make demo`: the demo tenant onboarded, its key rotated and its inventory taken, with a labelled demo approver."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DEMO_REQUESTER = "alice@contoso.example (demo requester)"


def approve_when_paused(flow_name: str, stop: threading.Event) -> None:
    """Answer the flow's approval pause as the demo approver (never a person)."""
    from flows.approval import DEMO_APPROVER, answer_approval, find_paused_run

    while not stop.is_set():
        run = find_paused_run(flow_name=flow_name)
        if run is not None:
            print(f"[demo] {flow_name} is paused for approval; answering as {DEMO_APPROVER!r}.", flush=True)
            answer_approval(
                run.id,
                approver=DEMO_APPROVER,
                decision="approve",
                change_ticket="DEMO-0001",
                comment="Approved automatically by the demo script.",
            )
            return
        time.sleep(0.5)


def run_with_demo_approver(flow_name: str, run: Any) -> Any:
    """Run a flow in this thread while the demo approver answers its approval pause."""
    stop = threading.Event()
    answering = threading.Thread(target=approve_when_paused, args=(flow_name, stop), daemon=True)
    answering.start()
    try:
        return run()
    finally:
        stop.set()


def print_summary(reports: Path, flow_name: str, change_id: str, state: Any) -> None:
    """Print the markdown summary a flow wrote, and how it ended."""
    summary = reports / f"{flow_name}-{change_id}-summary.md"
    print("\n" + "=" * 100)
    print(summary.read_text() if summary.exists() else f"(no summary written: {state.message})")
    print("=" * 100)
    print(f"[demo] {flow_name} ended {state.type.value}: {state.message or 'ok'}", flush=True)


def run_demo(state_dir: Path) -> int:
    """Start everything; onboard the eligible europe environments, rotate their key, take the inventory."""
    from deployments.runtime import local_stack

    reports = Path(os.environ.setdefault("CMK_REPORTS_DIR", str(Path("reports").resolve())))
    print(
        f"[demo] starting the simulator (demo tenant) and a temporary Prefect server; state in {state_dir}",
        flush=True,
    )
    with local_stack("demo", state_dir=state_dir, settings={"link_seconds": 3, "unlink_seconds": 3}) as sim:
        from flows.inventory import inventory
        from flows.onboard import onboard
        from flows.rotate import rotate

        sub = sim.endpoints["subscription_id"]
        vault_id = (
            f"/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
        )
        print(f"[demo] simulator ready: ARM {sim.endpoints['arm']}, BAP {sim.endpoints['bap']}", flush=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")

        print(
            "\n[demo] 1/3 onboarding: plan, approval, then key, policy, grants and links in waves", flush=True
        )
        change_id = f"DEMO-ONBOARD-{stamp}"
        state = run_with_demo_approver(
            "onboard",
            lambda: onboard(
                change_id=change_id,
                requested_by=DEMO_REQUESTER,
                vault_id=vault_id,
                policy_name="ep-cmk-europe",
                resource_group="rg-cmk",
                location="europe",
                return_state=True,
            ),
        )
        print_summary(reports, "onboard", change_id, state)
        result: Any = state.result(raise_on_failure=False)
        if not state.is_completed():
            return 1
        for row in result["rows"]:
            print(
                f"[demo]   {row.get('name', row['environment_id']):28} {row['status']:10} "
                f"key managed by {row.get('key_managed_by_before', '?')} -> {row.get('key_managed_by_after', '?')}"
            )

        print("\n[demo] 2/3 rotation (mode key-version: a new key version, no downtime)", flush=True)
        rotation_id = f"DEMO-ROTATE-{stamp}"
        state = run_with_demo_approver(
            "rotate",
            lambda: rotate(
                policy_id=result["policy_id"],
                change_id=rotation_id,
                requested_by=DEMO_REQUESTER,
                mode="key-version",
                return_state=True,
            ),
        )
        print_summary(reports, "rotate", rotation_id, state)

        print("\n[demo] 3/3 inventory and health (read-only)", flush=True)
        state = inventory(return_state=True)
        summaries = sorted(reports.glob("inventory-*-summary.md"), key=lambda p: p.stat().st_mtime)
        print("\n" + "=" * 100)
        print(summaries[-1].read_text() if summaries else f"(no inventory summary: {state.message})")
        print("=" * 100)
        print(f"[demo] inventory ended {state.type.value}")
        print(f"\n[demo] reports: {reports} (CSV and markdown); audit journal: {state_dir / 'journal.jsonl'}")
        return 0


def main() -> int:
    """Entry point for `python -m deployments.demo`."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    state_dir = Path(
        tempfile.mkdtemp(
            prefix="cmk-demo-", dir=Path(".state").resolve() if Path(".state").exists() else None
        )
    )
    os.environ["CMK_STATE_DIR"] = str(state_dir)
    return run_demo(state_dir)


if __name__ == "__main__":
    sys.exit(main())
