"""Flow tests: one Prefect test server per session, the shared simulator reset per test, blocks pointing at it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from simulator.testing import RunningSimulator
from tests.support import ready_for_flows


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect API (SQLite) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def flow_env(prefect_server: None, fresh_sim: RunningSimulator, tmp_path: Path) -> Iterator[RunningSimulator]:
    """A reset simulator with fast operations, fresh state and report dirs, and the default blocks saved."""
    with ready_for_flows(
        fresh_sim, tmp_path, link_seconds=1, unlink_seconds=1, provider_registration_seconds=1
    ) as sim:
        yield sim


@dataclass
class Approver:
    """Answers the paused runs of a flow in the background, one scripted answer per pause."""

    flow_name: str
    answers: list[dict[str, Any]]
    given: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from flows.approval import answer_approval, find_paused_run

        answered: set[tuple[str, str]] = set()
        try:
            while self.answers and not self._stop.is_set():
                run = find_paused_run(flow_name=self.flow_name)
                marker = (str(run.id), str(run.state.id)) if run else None
                if run is None or marker in answered:
                    time.sleep(0.3)
                    continue
                answer = self.answers.pop(0)
                answer_approval(run.id, **answer)
                answered.add(marker)
                self.given.append(answer)
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    def stop(self) -> None:
        """Stop answering; re-raise anything the thread hit."""
        self._stop.set()
        self._thread.join(timeout=10)
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def approver() -> Iterator[Any]:
    """approver(flow_name, [answer, ...]) starts a background Approver; stopped after the test."""
    started: list[Approver] = []

    def start(flow_name: str, answers: list[dict[str, Any]]) -> Approver:
        a = Approver(flow_name, list(answers))
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()


def demo_vault_id(sim: RunningSimulator) -> str:
    """The ARM id of the demo tenant's vault."""
    return (
        f"/subscriptions/{sim.endpoints['subscription_id']}/resourceGroups/rg-cmk"
        "/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
    )
