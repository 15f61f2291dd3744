"""The real stack for UI tests: simulator, a Prefect server with its UI, blocks, the onboarding deployment served;
and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deployments.stack import Stack, StackConfig, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("CMK_SCREENSHOT_DIR", "out/screenshots"))
ONBOARD_DEPLOYMENT = "encrypt-environments"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Everything a person meets in the UI, on free ports, torn down after the module."""
    root = tmp_path_factory.mktemp("stack")
    config = StackConfig(
        port=free_port(),
        state_dir=root / "state",
        reports_dir=root / "reports",
        only=[ONBOARD_DEPLOYMENT],
        sim_settings={"link_seconds": 2, "unlink_seconds": 2},
        runner_poll_seconds=1,
    )
    running = Stack(config)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from Debian (Playwright's own download cannot work offline)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium).")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page with a desktop-sized viewport."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)  # the UI and the served runs share two cores with the other tests
    yield context.new_page()
    context.close()


def deployment_id(stack: Stack, name: str) -> str:
    """The served deployment's id, by name."""
    response = httpx.post(f"{stack.config.api_url}/deployments/filter", json={}, timeout=10)
    response.raise_for_status()
    return next(d["id"] for d in response.json() if d["name"] == name)


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG under out/screenshots (a test output to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
