"""Onboarding as our users meet it: started from the deployment's form, approved in the Resume dialog,
reported in the Artifacts tab; and a rejection. Real Prefect server and UI, headless Chromium, the simulator."""

from __future__ import annotations

import httpx

from simulator.scenarios.demo import EUROPE_ELIGIBLE
from tests.browser.conftest import ONBOARD_DEPLOYMENT, deployment_id, screenshot
from tests.browser.ui import (
    add_list_items,
    answer_resume_dialog,
    fill_parameter,
    flow_run_for_change,
    submit_run_form,
    wait_for_new_pause,
    wait_for_state,
)

REQUESTER = "alice@contoso.example"
CHOSEN = EUROPE_ELIGIBLE[:2]
NAMES = {EUROPE_ELIGIBLE[0]: "Contoso Finance", EUROPE_ELIGIBLE[1]: "Contoso HR"}


def vault_id(stack) -> str:
    sub = stack.sim.endpoints["subscription_id"]
    return f"/subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo"


def link_posts(stack, since: int) -> list[dict]:
    return [
        r
        for r in stack.sim.control.requests(since=since, service="bap", method="POST")
        if r["path"].endswith("/link")
    ]


def test_onboarding_started_approved_and_reported_in_the_ui(stack, page) -> None:
    ui = stack.config.ui_url
    since = stack.sim.control.last_seq()
    # 1. Start the run from the deployment's custom-run form, as operations staff do.
    page.goto(
        f"{ui}/deployments/deployment/{deployment_id(stack, ONBOARD_DEPLOYMENT)}/run",
        wait_until="networkidle",
    )
    fill_parameter(page, "change_id", "CHG-UI-0001")
    fill_parameter(page, "requested_by", REQUESTER)
    fill_parameter(page, "vault_id", vault_id(stack))
    fill_parameter(page, "policy_name", "ep-cmk-ui")
    fill_parameter(page, "resource_group", "rg-cmk")
    fill_parameter(page, "location", "europe")
    add_list_items(page, "environments", CHOSEN)
    screenshot(page, "01-custom-run-form")
    submit_run_form(page)
    run = flow_run_for_change(stack, "CHG-UI-0001")
    run = wait_for_state(stack, run["id"], {"PAUSED"}, timeout=180)
    assert run["parameters"]["environments"] == CHOSEN

    # 2. A self-approval by the requester is refused, the reason shows in the logs, the run stays paused.
    page.goto(f"{ui}/runs/flow-run/{run['id']}", wait_until="networkidle")
    screenshot(page, "02-paused-run")
    page.get_by_role("button", name="Resume").click()
    page.get_by_role("dialog").wait_for()
    screenshot(page, "03-approval-dialog")
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    page.get_by_role("dialog").wait_for(state="hidden")
    answer_resume_dialog(page, approver=REQUESTER, decision="approve", ticket="CHG-UI-0001")
    run = wait_for_new_pause(stack, run["id"], run["state"]["id"])
    assert run["state"]["type"] == "PAUSED"
    page.reload(wait_until="networkidle")
    refusal = page.get_by_text("four-eyes rule").first
    refusal.wait_for()
    refusal.scroll_into_view_if_needed()
    screenshot(page, "04-self-approval-refused", full_page=False)
    assert link_posts(stack, since) == []

    # A change manager approves.
    answer_resume_dialog(page, approver="carol@contoso.example", decision="approve", ticket="CHG-UI-0001")
    run = wait_for_state(stack, run["id"], {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert sorted(r["target"] for r in link_posts(stack, since)) == sorted(CHOSEN)

    # 3. The per-environment table in the run's Artifacts tab.
    page.goto(f"{ui}/runs/flow-run/{run['id']}", wait_until="networkidle")
    page.get_by_text("Artifacts", exact=True).first.click()
    page.wait_for_load_state("networkidle")
    page.get_by_text("onboard-environments").first.click()
    page.wait_for_load_state("networkidle")
    for env_id, name in NAMES.items():
        page.get_by_text(name).first.wait_for()
        page.get_by_text(env_id).first.wait_for()
    assert page.get_by_text("succeeded").count() >= len(CHOSEN)
    screenshot(page, "05-report-table")


def test_rejection_in_the_ui_cancels_the_run_and_changes_nothing(stack, page) -> None:
    ui = stack.config.ui_url
    since = stack.sim.control.last_seq()
    response = httpx.post(
        f"{stack.config.api_url}/deployments/{deployment_id(stack, ONBOARD_DEPLOYMENT)}/create_flow_run",
        json={
            "parameters": {
                "change_id": "CHG-UI-0002",
                "requested_by": REQUESTER,
                "vault_id": vault_id(stack),
                "policy_name": "ep-cmk-ui-2",
                "resource_group": "rg-cmk",
                "location": "europe",
                "environments": [EUROPE_ELIGIBLE[2]],
            }
        },
        timeout=10,
    )
    response.raise_for_status()
    run = wait_for_state(stack, response.json()["id"], {"PAUSED"}, timeout=180)
    page.goto(f"{ui}/runs/flow-run/{run['id']}", wait_until="networkidle")
    answer_resume_dialog(
        page, approver="bob@contoso.example", decision="reject", comment="Not during quarter close."
    )
    run = wait_for_state(stack, run["id"], {"COMPLETED", "FAILED", "CANCELLED"}, timeout=120)
    assert run["state"]["type"] == "CANCELLED"
    assert "Not during quarter close." in run["state"]["message"]
    page.reload(wait_until="networkidle")
    page.get_by_text("Cancelled").first.wait_for()
    screenshot(page, "06-rejected-run")
    assert link_posts(stack, since) == []
    env = stack.sim.control.state()["bap"]["environments"][EUROPE_ELIGIBLE[2]]
    assert env["encryption"] == "microsoft"
