"""`make serve`'s entry point: a real Prefect server, served deployments, runs triggered through the API."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.catalog import resolve
from deployments.stack import Stack, StackConfig, free_port, main, port_is_free
from flows.approval import answer_approval
from simulator.scenarios.demo import EUROPE_ELIGIBLE, SUBSCRIPTION_ID
from tests.flows.webhook import WebhookRecorder

VAULT_ID = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, WebhookRecorder]]:
    """The whole local stack on free ports, with approval notifications to a recording webhook."""
    base = tmp_path_factory.mktemp("stack")
    webhook = WebhookRecorder()
    running = Stack(
        StackConfig(
            port=free_port(),
            state_dir=base / "state",
            reports_dir=base / "reports",
            sim_settings={"link_seconds": 1, "unlink_seconds": 1, "provider_registration_seconds": 1},
            webhook_url=webhook.url,
            runner_poll_seconds=1,
            startup_timeout=150,
        )
    )
    running.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: running.config.api_url}):
            yield running, webhook
    finally:
        running.stop()
        webhook.close()


def wait_final(flow_run_id: UUID, timeout: float = 90) -> Any:
    """The flow run once it reached a final state."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"flow run {flow_run_id} still {run.state} after {timeout} s")
            time.sleep(1)


def test_served_deployments_run_against_the_simulator(stack: tuple[Stack, WebhookRecorder]) -> None:
    running, webhook = stack
    config = running.config
    assert running.served == sorted(spec.name for spec, _ in resolve().available)
    page = httpx.get(config.ui_url, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()

    onboard_run = run_deployment(
        "onboard/encrypt-environments",
        parameters={
            "change_id": "CHG-SERVE-1",
            "requested_by": "alice",
            "vault_id": VAULT_ID,
            "policy_name": "ep-served",
            "resource_group": "rg-cmk",
            "location": "europe",
        },
        timeout=0,
    )
    inventory_run = run_deployment("inventory/nightly-inventory", timeout=0)

    post = webhook.wait_for(str(onboard_run.id), timeout=60)
    assert f"{config.ui_url}/runs/flow-run/{onboard_run.id}" in post["text"]
    answer_approval(onboard_run.id, approver="carol", decision="approve", change_ticket="CHG-SERVE-1")

    inventory_done = wait_final(inventory_run.id)
    assert inventory_done.state.is_completed(), inventory_done.state.message
    onboard_done = wait_final(onboard_run.id)
    assert onboard_done.state.is_completed(), onboard_done.state.message

    assert running.sim is not None
    envs = running.sim.control.state()["bap"]["environments"]
    assert sorted(e for e, v in envs.items() if v["encryption"] == "cmk") == sorted(EUROPE_ELIGIBLE)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[inventory_run.id]))
        )
    table = next(a for a in artifacts if a.key == "inventory-environments")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert len(rows) == 12
    assert (config.state_dir / "journal.jsonl").exists()  # flow runs used the stack's CMK_STATE_DIR
    assert list(config.reports_dir.glob("inventory-*-environments.csv"))


def test_stop_ends_every_process_and_frees_the_port(stack: tuple[Stack, WebhookRecorder]) -> None:
    running, _ = stack
    server, serve = running.server, running.serve
    assert server is not None and serve is not None
    running.stop()
    assert server.poll() is not None and serve.poll() is not None
    assert port_is_free(running.config.host, running.config.port)


def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        started = time.monotonic()
        assert main(["--port", str(busy.getsockname()[1])]) == 1
    assert time.monotonic() - started < 5
