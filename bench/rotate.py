"""Benchmark: rotate (policy-swap) 1,000 environments of the large scenario against the simulator.

The tenant is `large:N` with every environment moved to geo europe, made a managed Production environment and
linked to one policy (seeded through the scenario dict: no onboarding time in the figures). Then the rotate flow
swaps all of them to a new key and policy with the per-wave fan-out, approvals answered by a labelled demo
approver. Printed: environments, wall time of the move, the lower bound the simulator's settings imply
(link duration x rounds of `concurrency`), their ratio, BAP requests per environment, and peak memory.

    python -m bench.rotate [--environments 1000] [--concurrency 100] [--link-seconds 5]
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from simulator.scenarios.large import build_large

POLICY = "ep-bench-old"


def bench_scenario(count: int) -> dict[str, Any]:
    """large:count, every environment europe, managed, Production and linked to one seeded policy."""
    scenario = build_large(count)
    scenario["name"] = f"bench-rotate:{count}"
    scenario["providers"] = {"Microsoft.PowerPlatform": "Registered"}
    scenario["vaults"][0]["keys"] = [{"name": "pp-cmk-key", "kty": "RSA", "size": 2048}]
    scenario["enterprise_policies"] = [
        {
            "name": POLICY,
            "resource_group": "rg-cmk",
            "location": "europe",
            "vault": "kv-cmk-eu",
            "key": "pp-cmk-key",
            "grant": "access_policy",
            "reader_for": ["powerplatform-admin"],
        }
    ]
    for env in scenario["environments"]:
        env.update(location="europe", azure_region="westeurope", sku="Production", managed=True)
        env.update(encryption="cmk", policy=POLICY, runtime="Enabled")
    return scenario


def answer_approvals(stop: threading.Event) -> None:
    """Approve the rotate run's pause as the labelled demo approver."""
    from flows.approval import DEMO_APPROVER, answer_approval, find_paused_run

    while not stop.is_set():
        run = find_paused_run(flow_name="rotate")
        if run is not None:
            answer_approval(run.id, approver=DEMO_APPROVER, decision="approve", change_ticket="BENCH")
            return
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.rotate", description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--canary", type=int, default=10)
    parser.add_argument("--link-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)

    from deployments.runtime import local_stack

    state = Path(tempfile.mkdtemp(prefix="cmk-bench-"))
    settings = {
        "link_seconds": args.link_seconds,
        "unlink_seconds": args.link_seconds,
        "operation_retry_after": 1,
    }
    print(
        f"Starting the simulator ({args.environments} linked environments) and a Prefect API ...", flush=True
    )
    import os

    os.environ["CMK_STATE_DIR"] = str(state / "state")
    os.environ["CMK_REPORTS_DIR"] = str(state / "reports")
    with local_stack(bench_scenario(args.environments), state_dir=state, settings=settings) as sim:
        from flows.rotate import rotate

        sub = sim.endpoints["subscription_id"]
        policy_id = (
            f"/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/enterprisePolicies/"
            f"{POLICY}"
        )
        stop = threading.Event()
        threading.Thread(target=answer_approvals, args=(stop,), daemon=True).start()
        mark = sim.control.last_seq()
        started = time.perf_counter()
        state_ = rotate(
            policy_id=policy_id,
            change_id="BENCH-ROTATE",
            requested_by="bench",
            mode="policy-swap",
            new_policy_name="ep-bench-new",
            new_key_name="pp-cmk-key-2",
            concurrency=args.concurrency,
            canary_size=args.canary,
            failure_threshold=10,
            fanout="per-wave",
            return_state=True,
        )
        wall = time.perf_counter() - started
        stop.set()
        result = state_.result(raise_on_failure=False)
        rows = result["rows"] if isinstance(result, dict) else []
        bap = sim.control.requests(since=mark, service="bap")
        envs = sim.control.state()["bap"]["environments"]
        new_sid = next(
            p["properties"]["systemId"].lower()
            for p in sim.control.state()["arm"]["enterprise_policies"]
            if p["name"] == "ep-bench-new"
        )
    moved = sum(1 for e in envs.values() if (e["policy_system_id"] or "").lower() == new_sid)
    n = args.environments
    rounds = math.ceil(min(args.canary, n) / args.concurrency) + math.ceil(
        max(0, n - args.canary) / args.concurrency
    )
    bound = rounds * args.link_seconds
    posts = sum(1 for r in bap if r["method"] == "POST")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"state                  : {state_.type.value} ({state_.message or 'ok'})")
    print(f"environments           : {n} (moved to the new policy: {moved}; rows: {len(rows)})")
    print(
        f"wall time              : {wall:.1f} s (whole flow: preflight, key, policy, grants, approval, moves)"
    )
    print(
        f"lower bound            : {bound:.1f} s = {rounds} rounds of <= {args.concurrency} x link {args.link_seconds:g} s"
        " (no BAP rate limit set)"
    )
    print(f"ratio wall / bound     : {wall / bound:.2f}")
    print(f"BAP requests / env     : {len(bap) / n:.2f} ({len(bap)} in all, {posts} POST)")
    print(
        f"peak memory (RSS)      : {peak_mb:.0f} MB (this process: flow + simulator; the Prefect API is a subprocess)"
    )
    return 0 if moved == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
