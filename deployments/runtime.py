"""Start what a flow run needs locally: the simulator and a Prefect API, wired together."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulator.testing import RunningSimulator, running_simulator


def point_identity_endpoint(endpoints: dict[str, Any]) -> None:
    """Managed-identity credentials read IDENTITY_ENDPOINT/IDENTITY_HEADER from the environment at each request."""
    os.environ["IDENTITY_ENDPOINT"] = endpoints["token"]
    os.environ["IDENTITY_HEADER"] = endpoints["identity_header"]


@contextmanager
def local_stack(
    scenario: str | dict[str, Any] = "demo", *, state_dir: Path, settings: dict[str, Any] | None = None
) -> Iterator[RunningSimulator]:
    """The simulator plus an ephemeral Prefect API, with the default blocks pointing at the simulator."""
    from prefect.testing.utilities import prefect_test_harness

    from blocks.simulator import save_simulator_blocks

    os.environ.setdefault("CMK_STATE_DIR", str(state_dir))
    with running_simulator(scenario, state_dir=state_dir / "simulator") as sim:
        if settings:
            sim.control.settings(**settings)
        point_identity_endpoint(sim.endpoints)
        with prefect_test_harness(server_startup_timeout=120):
            save_simulator_blocks(sim.endpoints)
            yield sim
