"""The deployment catalog: created on the Prefect server with schedules and typed parameter forms."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.settings import PREFECT_API_URL

from deployments.catalog import CATALOG, DeploymentSpec, build_deployment, resolve
from deployments.prefect_yaml import WORK_POOL, render

ROOT = Path(__file__).resolve().parents[2]


def read_deployment(name: str) -> Any:
    """A deployment by 'flow/deployment' name, read back through the client."""
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


@pytest.fixture(scope="module")
def applied(prefect_server: None) -> dict[str, Any]:
    """Every catalog deployment whose flow imports, applied to the session's Prefect server."""
    resolved = resolve()
    for spec, flow in resolved.available:
        build_deployment(spec, flow).apply()
    return {spec.name: (spec, flow) for spec, flow in resolved.available}


def properties(deployment: Any) -> dict[str, Any]:
    """The parameter form's fields."""
    return deployment.parameter_openapi_schema["properties"]


def enum_of(schema: dict[str, Any], field: str, deployment: Any) -> list[Any]:
    """A field's enum values, following a $ref into the schema's definitions."""
    prop = schema[field]
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        prop = deployment.parameter_openapi_schema["definitions"][name]
    if "allOf" in prop:
        name = prop["allOf"][0]["$ref"].rsplit("/", 1)[-1]
        prop = deployment.parameter_openapi_schema["definitions"][name]
    return prop["enum"]


def test_every_importable_flow_is_a_deployment_with_a_described_form(applied: dict[str, Any]) -> None:
    assert {"encrypt-environments", "nightly-inventory"} <= set(applied)
    for name, (spec, flow) in applied.items():
        deployment = read_deployment(f"{flow.name}/{name}")
        assert deployment.description == build_deployment(spec, flow).description
        assert deployment.description == spec.description or spec.builder
        assert set(spec.tags) <= set(deployment.tags)
        assert deployment.enforce_parameter_schema
        fields = properties(deployment)
        undescribed = [f for f, prop in fields.items() if not prop.get("description")]
        assert undescribed == [], f"{name}: form fields without a description: {undescribed}"


def test_forms_offer_enums_and_required_fields(applied: dict[str, Any]) -> None:
    onboard = read_deployment("onboard/encrypt-environments")
    fields = properties(onboard)
    assert enum_of(fields, "key_type", onboard) == ["RSA", "RSA-HSM"]
    assert enum_of(fields, "key_size", onboard) == [2048, 3072]
    assert {"change_id", "requested_by", "vault_id"} <= set(onboard.parameter_openapi_schema["required"])
    assert (
        "four" in fields["requested_by"]["description"] or "approve" in fields["requested_by"]["description"]
    )
    inventory = read_deployment("inventory/nightly-inventory")
    assert enum_of(properties(inventory), "fail_on", inventory) == ["never", "high", "medium", "low"]
    assert not inventory.parameter_openapi_schema.get("required")  # a schedule can run it without input


def test_schedules_nightly_inventory_and_quarterly_rotation(applied: dict[str, Any]) -> None:
    inventory = read_deployment("inventory/nightly-inventory")
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in inventory.schedules] == [
        ("30 2 * * *", "UTC", True)
    ]
    if "rotate-key" in applied:
        rotation = read_deployment("rotate/rotate-key")
        crons = [s.schedule.cron for s in rotation.schedules]
        assert any(c.split()[3] == "1,4,7,10" or "*/3" in c.split()[3] for c in crons), crons
    onboard = read_deployment("onboard/encrypt-environments")
    assert onboard.schedules == []


def test_missing_or_broken_flow_modules_are_left_out_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_flow_module.py").write_text("raise RuntimeError('half-written')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    catalog = [
        DeploymentSpec("flows.inventory:inventory", "inv", "d"),
        DeploymentSpec("flows.not_there:nothing", "absent", "d"),
        DeploymentSpec("broken_flow_module:flow", "broken", "d"),
    ]
    resolved = resolve(catalog)
    assert [spec.name for spec, _ in resolved.available] == ["inv"]
    reasons = {spec.name: reason for spec, reason in resolved.missing}
    assert "not written yet" in reasons["absent"]
    assert "RuntimeError: half-written" in reasons["broken"]


def test_prefect_yaml_is_generated_from_the_catalog() -> None:
    text = (ROOT / "prefect.yaml").read_text()
    assert text == render(), "prefect.yaml is stale: run python -m deployments.prefect_yaml > prefect.yaml"
    document = yaml.safe_load(text)
    assert [d["name"] for d in document["deployments"]] == [s.name for s in CATALOG]
    for entry in document["deployments"]:
        path, function = entry["entrypoint"].split(":")
        assert entry["work_pool"]["name"] == WORK_POOL
        assert function and path.startswith("flows/")


def test_prefect_deploy_accepts_the_yaml(applied: dict[str, Any], tmp_path: Path) -> None:
    with get_client(sync_client=True) as client:
        if WORK_POOL not in {p.name for p in client.read_work_pools()}:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "CMK_ORCHESTRATOR_HOME": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", "nightly-inventory"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    deployed = read_deployment("inventory/nightly-inventory")
    assert deployed.work_pool_name == WORK_POOL
    assert deployed.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]
    assert [s.schedule.cron for s in deployed.schedules] == ["30 2 * * *"]
