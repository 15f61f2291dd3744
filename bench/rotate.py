"""Benchmark: rotate (policy-swap) N environments against the simulator, measured against the bound.

Each run is a process of its own (bench/run_one.py) with the simulator in another process, so CPU time and
peak RSS are the flow process's alone. `make bench` runs 1,000 environments twice: with a BAP rate limit set
in the simulator and without, and a sequential baseline (one environment at a time, as Microsoft's scripts
do) on a few environments of the same tenant, scaled to N. `--scale` runs 1,000, 5,000 and 10,000 (long).

The bound: serial prefix + max(ceil((N - canary) / C) x op, (N - canary) x requests per env / rate limit),
where the serial prefix is the flow's work before its first link POST (measured: preflight, new key, new
policy, grants, approval) plus one operation for the canary wave, which is a barrier by design.

    python -m bench.rotate [--environments 1000] [--concurrency 100] [--link-seconds 5] [--bap-rate 20] [--scale]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from typing import Any


def run_one(**options: Any) -> dict[str, Any]:
    """One run in a child process; its figures."""
    cmd = [sys.executable, "-m", "bench.run_one"]
    for name, value in options.items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    print(f"  running: {' '.join(cmd[2:])} ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.removeprefix("BENCH-RESULT "))
    sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
    raise SystemExit(f"the run {options} printed no result (exit {proc.returncode})")


def bound(f: dict[str, Any]) -> dict[str, float]:
    """The lower bound of a run and its parts."""
    n, c, op = f["environments"], f["concurrency"], f["link_seconds"]
    rest = max(0, n - f["canary"])
    per_env = f["move_requests"] / n
    concurrency_term = math.ceil(rest / c) * op
    rate_term = rest * per_env / f["bap_rate"] if f["bap_rate"] else 0.0
    serial = f["prefix"] + (op if f["canary"] else 0.0)
    return {
        "serial": serial,
        "concurrency": concurrency_term,
        "rate": rate_term,
        "per_env": per_env,
        "total": serial + max(concurrency_term, rate_term),
    }


def report(title: str, f: dict[str, Any], baseline: float | None = None, baseline_from: int = 0) -> None:
    """Print one run's figures."""
    n = f["environments"]
    b = bound(f)
    limit = (
        f"BAP rate limit {f['bap_rate']:g}/s (burst {f['bap_burst']})"
        if f["bap_rate"]
        else "no BAP rate limit"
    )
    print(
        f"\n== {title}: {n} environments, concurrency {f['concurrency']}, link {f['link_seconds']:g} s, {limit}"
    )
    print(f"state                  : {f['state']} {f['message']}".rstrip())
    print(
        f"moved / rows           : {f['moved']} / {f['rows']} (accepted link POSTs: {f['accepted_link_posts']})"
    )
    print(
        f"wall time              : {f['wall']:.1f} s (whole flow; moves from the first link POST: {f['moves']:.1f} s)"
    )
    terms = f"ceil({n - f['canary']}/{f['concurrency']}) x {f['link_seconds']:g} s = {b['concurrency']:.1f} s"
    if f["bap_rate"]:
        terms += f"; {n - f['canary']} x {b['per_env']:.2f} req / {f['bap_rate']:g}/s = {b['rate']:.1f} s"
    print(
        f"bound                  : {b['total']:.1f} s = serial prefix {b['serial']:.1f} s (flow before the first"
        f" link POST {f['prefix']:.1f} s + canary {f['link_seconds']:g} s) + max({terms})"
    )
    print(f"ratio wall / bound     : {f['wall'] / b['total']:.2f}")
    print(
        f"BAP requests / env     : {f['bap_requests'] / n:.2f} ({f['bap_requests']} in all, {f['bap_posts']} POST,"
        f" {f['throttled']} answered 429)"
    )
    print(
        f"orchestration CPU / env: {f['cpu_seconds'] * 1000 / n:.1f} ms (flow process, {f['cpu_seconds']:.1f} s)"
    )
    print(
        f"peak RSS               : {f['peak_rss_mb']:.0f} MB (flow process; simulator and Prefect API apart)"
    )
    if baseline:
        sequential = baseline * n
        print(
            f"sequential baseline    : {baseline:.2f} s per environment, measured on {baseline_from} environments"
            f" one at a time and scaled x{n / baseline_from:g} to {sequential:.0f} s"
        )
        print(
            f"speedup                : {sequential / f['moves']:.1f}x on the moves ({sequential / f['moves'] / f['concurrency']:.2f}"
            f" x concurrency), {sequential / f['wall']:.1f}x on the whole flow"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.rotate", description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--canary", type=int, default=10)
    parser.add_argument("--link-seconds", type=float, default=5.0)
    parser.add_argument(
        "--bap-rate", type=float, default=20.0, help="the throttled run's BAP limit, requests/s"
    )
    parser.add_argument("--bap-burst", type=int, default=20)
    parser.add_argument("--baseline", type=int, default=12, help="environments for the sequential baseline")
    parser.add_argument("--scale", action="store_true", help="also 5,000 and 10,000 environments (long)")
    args = parser.parse_args(argv)
    common = {"concurrency": args.concurrency, "canary": args.canary, "link_seconds": args.link_seconds}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    free = run_one(environments=args.environments, baseline=args.baseline, **common)
    report("no rate limit", free, free["baseline_seconds_per_env"], args.baseline)
    throttled = run_one(
        environments=args.environments,
        bap_rate=args.bap_rate,
        bap_burst=args.bap_burst,
        baseline=args.baseline,
        **common,
    )
    report("throttled", throttled, throttled["baseline_seconds_per_env"], args.baseline)
    if args.scale:
        runs = {args.environments: free}
        for n in (5000, 10000):
            runs[n] = run_one(environments=n, **common)
            report("scale", runs[n], free["baseline_seconds_per_env"], args.baseline)
        base = runs[args.environments]
        print("\n== how cost grows (no rate limit; x = against the first run)")
        for n, f in runs.items():
            print(
                f"{n:>6} envs: wall {f['wall']:7.1f} s (x{f['wall'] / base['wall']:.2f}), ratio to bound"
                f" {f['wall'] / bound(f)['total']:.2f}, CPU {f['cpu_seconds']:6.1f} s (x{f['cpu_seconds'] / base['cpu_seconds']:.2f},"
                f" {f['cpu_seconds'] * 1000 / n:.1f} ms/env), RSS {f['peak_rss_mb']:.0f} MB,"
                f" {f['bap_requests'] / n:.2f} BAP req/env"
            )
    ok = all(f["moved"] == f["environments"] for f in (free, throttled))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
