"""python -m simulator serve [--host 127.0.0.1] [--port 0] [--scenario demo|large:N|PATH] [--state-dir DIR]."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from simulator.server import SimulatorServer


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the simulator and print its endpoints as one JSON line")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="ARM / control port; 0 picks a free one")
    serve.add_argument("--scenario", default="demo", help="demo, large:N, or a scenario JSON file")
    serve.add_argument("--state-dir", default=".state/simulator", help="where endpoints.json and the CA go")
    serve.add_argument("--vault-ports", type=int, default=16, help="how many vault endpoints to pre-bind")
    args = parser.parse_args(argv)
    try:
        server = SimulatorServer(
            args.scenario,
            host=args.host,
            port=args.port,
            state_dir=args.state_dir,
            vault_ports=args.vault_ports,
        )
        endpoints = server.start()
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps(endpoints), flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
