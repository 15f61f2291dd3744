"""python -m deployments.serve [--only NAME ...] [--limit N]: serve every catalog deployment from this process.

Needs PREFECT_API_URL pointing at a Prefect server (`make serve` starts one). Each triggered run executes in a
subprocess of this one; Ctrl-C stops serving (schedules stay active: runs wait until something serves them).
"""

from __future__ import annotations

import argparse
import logging
import sys

from deployments.catalog import CATALOG, resolve

log = logging.getLogger("deployments.serve")


def main(argv: list[str] | None = None) -> int:
    """Resolve the catalog, log what is served and what is missing, and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="deployment names to serve (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="most flow runs at the same time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    from deployments.catalog import build_deployment

    if not PREFECT_API_URL.value():
        print(
            "PREFECT_API_URL is not set: start a Prefect server (make serve) or point it at yours.",
            file=sys.stderr,
        )
        return 2
    wanted = set(args.only) if args.only else None
    unknown = (wanted or set()) - {s.name for s in CATALOG}
    if unknown:
        print(
            f"Unknown deployment(s): {', '.join(sorted(unknown))}. Known: "
            f"{', '.join(s.name for s in CATALOG)}.",
            file=sys.stderr,
        )
        return 2
    resolved = resolve([s for s in CATALOG if wanted is None or s.name in wanted])
    if not resolved.available:
        print("No deployment can be served: every flow module failed to import (see above).", file=sys.stderr)
        return 1
    deployments = [build_deployment(spec, flow) for spec, flow in resolved.available]
    log.info(
        "Serving %d deployment(s): %s. Not served: %s.",
        len(deployments),
        ", ".join(f"{flow.name}/{spec.name}" for spec, flow in resolved.available),
        ", ".join(f"{spec.name} ({reason})" for spec, reason in resolved.missing) or "none",
    )
    # The server usually stops with us (make serve); pausing the schedules would only surprise the next start.
    try:
        serve(*deployments, limit=args.limit, pause_on_shutdown=False)
    except KeyboardInterrupt:  # Ctrl-C (or make serve stopping us) is the normal way to end
        log.info("Stopped serving.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
