"""Small Playwright helpers for the Prefect UI's forms and dialogs (as a person would use them)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from deployments.stack import Stack


def parameter(page: Any, name: str) -> Any:
    """The form block of one flow parameter, found by its label."""
    label = page.locator(".schema-form-property__label").filter(
        has_text=re.compile(rf"^{re.escape(name)}( \(Optional\))?$")
    )
    return page.locator(".p-label").filter(has=label).first


def fill_parameter(page: Any, name: str, value: str) -> None:
    """Type a value into a text or number parameter."""
    field = parameter(page, name).locator("textarea, input").first
    field.scroll_into_view_if_needed()
    field.fill(value)


def add_list_items(page: Any, name: str, values: list[str]) -> None:
    """Add items to a list parameter with its 'Add item' button, each into the field that button created."""
    block = parameter(page, name)
    fields = block.locator("textarea, input[type=text]")
    for value in values:
        before = fields.count()
        block.get_by_role("button", name="Add item").click()
        new_field = fields.nth(before)
        new_field.wait_for()  # the UI renders the new field a moment after the click, slower under load
        new_field.fill(value)
    filled = [fields.nth(i).input_value() for i in range(fields.count())]
    assert filled[-len(values) :] == values, f"the {name} list holds {filled}, expected {values}"


def submit_run_form(page: Any) -> None:
    """Submit a custom-run form and wait for the UI's confirmation that the run was scheduled."""
    submit = page.get_by_role("button", name="Submit")
    if not clicked_until(page, submit, page.get_by_text("scheduled to start").first, "visible"):
        from tests.browser.conftest import screenshot

        path = screenshot(page, "submit-not-confirmed")
        raise AssertionError(f"The run form was not accepted; see {path}.")


def clicked_until(page: Any, button: Any, target: Any, state: str, timeout_ms: int = 30_000) -> bool:
    """Click, then wait for target to reach state; click once more if the UI showed its transient
    "Something went wrong" toast (a request of the UI failed under load) and nothing happened."""
    for attempt in range(2):
        button.click()
        try:
            target.wait_for(state=state, timeout=timeout_ms)
            return True
        except Exception:
            if attempt or not page.get_by_text("Something went wrong").count():
                return False
    return False


def choose(page: Any, control: Any, option: str) -> None:
    """Pick an option of a Prefect UI select (a click only focuses it; the keyboard opens it)."""
    control.focus()
    page.keyboard.press("ArrowDown")
    page.get_by_role("option", name=option, exact=True).click()


def answer_resume_dialog(
    page: Any, *, approver: str, decision: str, ticket: str = "", comment: str = ""
) -> None:
    """Open the paused run's Resume dialog and submit an answer."""
    page.get_by_role("button", name="Resume").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    boxes = dialog.locator("textarea")
    boxes.nth(0).fill(approver)
    boxes.nth(1).fill(ticket)
    boxes.nth(2).fill(comment)
    control = dialog.locator("button.p-select-button__control").first
    for _ in range(3):  # under load the option list can miss a key press: check what the select shows
        choose(page, control, decision)
        if decision in control.inner_text():
            break
    if not clicked_until(page, dialog.get_by_role("button", name="Submit"), dialog, "hidden"):
        from tests.browser.conftest import screenshot

        path = screenshot(page, "resume-not-accepted")
        raise AssertionError(f"The Resume dialog did not accept the answer; see {path}.")


def flow_run_for_change(stack: Stack, change_id: str, timeout: float = 60) -> dict[str, Any]:
    """The flow run whose change_id parameter is change_id (waits until it exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{stack.config.api_url}/flow_runs/filter",
            json={"limit": 50, "sort": "START_TIME_DESC"},
            timeout=10,
        )
        response.raise_for_status()
        for run in response.json():
            if run["parameters"].get("change_id") == change_id:
                return run
        time.sleep(0.5)
    raise AssertionError(f"No flow run for change {change_id} within {timeout:.0f} s.")


def wait_for_state(stack: Stack, run_id: str, states: set[str], timeout: float = 120) -> dict[str, Any]:
    """Poll the run until its state type is one of states; fail with the last state otherwise."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{stack.config.api_url}/flow_runs/{run_id}", timeout=10)
        response.raise_for_status()
        run = response.json()
        if run["state"]["type"] in states:
            return run
        time.sleep(0.5)
    raise AssertionError(f"Run {run_id} is {run.get('state', {}).get('type')}, expected one of {states}.")


def wait_for_new_pause(
    stack: Stack, run_id: str, previous_state_id: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the run is paused again in a new state (a refused answer re-pauses the gate)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = wait_for_state(stack, run_id, {"PAUSED", "COMPLETED", "FAILED", "CANCELLED"}, timeout)
        if run["state"]["type"] != "PAUSED" or run["state"]["id"] != previous_state_id:
            return run
        time.sleep(0.5)
    raise AssertionError(f"Run {run_id} did not pause again within {timeout:.0f} s.")
