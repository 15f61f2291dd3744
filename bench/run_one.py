"""One benchmark run in a process of its own: the simulator in another process, the rotate flow here.

Prints one JSON line with what it measured: wall time, the serial prefix (flow start to the first link POST),
BAP requests in the move phase, 429s, the flow process's CPU time and peak RSS, and optionally the sequential
baseline (one environment at a time, as Microsoft's scripts do) on the same tenant and settings.

    python -m bench.run_one --environments 1000 [--bap-rate 20] [--baseline 12]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.scenario import OLD_POLICY, bench_scenario
from simulator.control.client import SimControl

NEW_POLICY = "ep-bench-new"


def start_simulator(scenario: dict[str, Any], state: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`python -m simulator serve` on the scenario: the process and its endpoints."""
    path = state / "scenario.json"
    path.write_text(json.dumps(scenario))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "serve",
            "--scenario",
            str(path),
            "--state-dir",
            str(state / "sim"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the simulator did not start")
    return proc, json.loads(line)


def answer_approvals(stop: threading.Event) -> None:
    """Approve the rotate run's pause as the labelled demo approver."""
    from flows.approval import DEMO_APPROVER, answer_approval, find_paused_run

    while not stop.is_set():
        run = find_paused_run(flow_name="rotate")
        if run is not None:
            answer_approval(run.id, approver=DEMO_APPROVER, decision="approve", change_ticket="BENCH")
            return
        time.sleep(0.2)


def sequential_baseline(endpoints: dict[str, Any], env_ids: list[str], system_id: str) -> float:
    """Seconds per environment linking env_ids one at a time: POST, poll by Retry-After, read back."""
    from cmk.clients.powerplatform import PowerPlatformService
    from cmk.clients.settings import settings_from_simulator

    _, settings = settings_from_simulator(endpoints)
    started = time.perf_counter()
    with PowerPlatformService(settings) as pp:
        for env_id in env_ids:
            handle = pp.start_link(env_id, system_id)
            pp.wait(handle, 600)
            env = pp.get_environment(env_id)
            if env.link_problems(system_id):
                raise RuntimeError(f"baseline: {env_id} is not linked: {env.link_problems(system_id)}")
    return (time.perf_counter() - started) / len(env_ids)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, rotate, measure; the figures as a dict."""
    state = Path(tempfile.mkdtemp(prefix="cmk-bench-"))
    os.environ["CMK_STATE_DIR"] = str(state / "state")
    os.environ["CMK_REPORTS_DIR"] = str(state / "reports")
    proc, endpoints = start_simulator(bench_scenario(args.environments), state)
    try:
        control = SimControl(endpoints["control"], endpoints["ca_bundle"])
        control.settings(
            link_seconds=args.link_seconds,
            unlink_seconds=args.link_seconds,
            operation_retry_after=1,
            bap_rate_per_second=args.bap_rate,
            bap_rate_burst=args.bap_burst,
        )
        from prefect.testing.utilities import prefect_test_harness

        from blocks.simulator import save_simulator_blocks
        from deployments.runtime import point_identity_endpoint

        point_identity_endpoint(endpoints)
        with prefect_test_harness(server_startup_timeout=120):
            save_simulator_blocks(endpoints)
            from flows.rotate import rotate

            sub = endpoints["subscription_id"]
            policy_id = (
                f"/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.PowerPlatform/"
                f"enterprisePolicies/{OLD_POLICY}"
            )
            stop = threading.Event()
            threading.Thread(target=answer_approvals, args=(stop,), daemon=True).start()
            mark = control.last_seq()
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            began = time.time()
            state_ = rotate(
                policy_id=policy_id,
                change_id="BENCH-ROTATE",
                requested_by="bench",
                mode="policy-swap",
                new_policy_name=NEW_POLICY,
                new_key_name="pp-cmk-key-2",
                concurrency=args.concurrency,
                canary_size=args.canary,
                failure_threshold=10,
                fanout="per-wave",
                return_state=True,
            )
            ended = time.time()
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            stop.set()
        result = state_.result(raise_on_failure=False)
        rows = result["rows"] if isinstance(result, dict) else []
        bap = control.requests(since=mark, service="bap")
        world = control.state()
        policies = {p["name"]: p["properties"]["systemId"] for p in world["arm"]["enterprise_policies"]}
        envs = world["bap"]["environments"]
        new_sid = policies[NEW_POLICY].lower()
        moved = sum(1 for e in envs.values() if (e["policy_system_id"] or "").lower() == new_sid)
        link_posts = [
            r for r in bap if r["method"] == "POST" and r["path"].endswith("/link") and r["status"] == 202
        ]
        first_post = min(r["time"] for r in link_posts) if link_posts else ended
        in_moves = [r for r in bap if r["time"] >= first_post]
        baseline = None
        if args.baseline:
            ids = list(envs)[: args.baseline]
            baseline = sequential_baseline(endpoints, ids, policies[OLD_POLICY])
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        return {
            "environments": args.environments,
            "concurrency": args.concurrency,
            "canary": args.canary,
            "link_seconds": args.link_seconds,
            "bap_rate": args.bap_rate,
            "bap_burst": args.bap_burst,
            "state": state_.type.value,
            "message": state_.message or "",
            "moved": moved,
            "rows": len(rows),
            "wall": ended - began,
            "prefix": first_post - began,
            "moves": ended - first_post,
            "bap_requests": len(bap),
            "bap_posts": sum(1 for r in bap if r["method"] == "POST"),
            "accepted_link_posts": len(link_posts),
            "move_requests": sum(1 for r in in_moves if r["status"] != 429),
            "throttled": sum(1 for r in bap if r["status"] == 429),
            "cpu_seconds": cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "baseline_environments": args.baseline,
            "baseline_seconds_per_env": baseline,
        }
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    """Parse, run, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.run_one")
    parser.add_argument("--environments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--canary", type=int, default=10)
    parser.add_argument("--link-seconds", type=float, default=5.0)
    parser.add_argument(
        "--bap-rate", type=float, default=0.0, help="simulator BAP requests/s per caller; 0 = none"
    )
    parser.add_argument("--bap-burst", type=int, default=20)
    parser.add_argument("--baseline", type=int, default=0, help="environments for the sequential baseline")
    args = parser.parse_args(argv)
    figures = run(args)
    print("BENCH-RESULT " + json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
