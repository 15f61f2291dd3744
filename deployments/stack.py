"""`make serve`: the simulator, a Prefect server with its UI, the blocks, and every deployment served.

    python -m deployments.stack [--port 4200] [--scenario demo] [--webhook-url URL]

Prefect state lives in a private PREFECT_HOME (.state/prefect) so it never touches ~/.prefect; analytics are
off. Ctrl-C stops the served deployments, then the server, then the simulator.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from deployments.sink import NotificationSink
from simulator.testing import RunningSimulator, running_simulator

log = logging.getLogger("deployments.stack")


@dataclass
class StackConfig:
    """Where everything runs and what it starts with."""

    host: str = "127.0.0.1"
    port: int = 4200
    state_dir: Path = Path(".state")
    reports_dir: Path = Path("reports")
    scenario: str | dict[str, Any] = "demo"
    sim_settings: dict[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None  # None: the local sink (deployments/sink.py) receives every notification
    alerts: bool = True  # the alert automations (deployments/alerts.py)
    remediate: str = (
        "all"  # CMK_REMEDIATE for the flows, unless the environment sets it (safe: all ask approval)
    )
    only: list[str] | None = None  # deployment names; None = all
    runner_poll_seconds: int = 5
    startup_timeout: float = 120.0
    serve_output: IO[str] | None = None  # None: a log file under PREFECT_HOME

    @property
    def prefect_home(self) -> Path:
        """The private PREFECT_HOME (SQLite database, profiles, local results)."""
        return (self.state_dir / "prefect").resolve()

    @property
    def ui_url(self) -> str:
        """Where the UI is."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Where the API is."""
        return f"{self.ui_url}/api"


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _stop_process(proc: subprocess.Popen[Any] | None, name: str, sig: int, grace: float) -> None:
    """Signal a child's process group, wait up to grace seconds, then kill the group."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %.0f s; killing it.", name, grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Stack:
    """Start and stop the local stack; one instance per run."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.sim: RunningSimulator | None = None
        self.server: subprocess.Popen[Any] | None = None
        self.serve: subprocess.Popen[Any] | None = None
        self.served: list[str] = []
        self.sink: NotificationSink | None = None
        self._exit = contextlib.ExitStack()
        self._logs: list[IO[Any]] = []

    # -- environment -----------------------------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        """The environment every child process gets: private Prefect home, URLs, state dirs."""
        cfg = self.config
        env = dict(os.environ)
        env.update(
            {
                "PREFECT_HOME": str(cfg.prefect_home),
                "PREFECT_API_URL": cfg.api_url,
                "PREFECT_UI_URL": cfg.ui_url,
                "PREFECT_SERVER_UI_API_URL": cfg.api_url,
                "PREFECT_SERVER_API_HOST": cfg.host,
                "PREFECT_SERVER_API_PORT": str(cfg.port),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1",
                "PREFECT_RUNNER_POLL_FREQUENCY": str(cfg.runner_poll_seconds),
                "CMK_STATE_DIR": str(cfg.state_dir.resolve()),
                "CMK_REPORTS_DIR": str(cfg.reports_dir.resolve()),
                "CMK_REMEDIATE": os.environ.get("CMK_REMEDIATE", cfg.remediate),
            }
        )
        return env

    def _log_file(self, name: str) -> IO[Any]:
        self.config.prefect_home.mkdir(parents=True, exist_ok=True)
        handle = open(self.config.prefect_home / name, "a")  # noqa: SIM115 - closed in stop()
        self._logs.append(handle)
        return handle

    def _spawn(self, args: list[str], output: IO[Any]) -> subprocess.Popen[Any]:
        """A child in its own session, so Ctrl-C reaches only us and we stop children in order."""
        return subprocess.Popen(
            args, env=self.child_env(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )

    # -- steps -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start everything; on any failure stop what was started and raise with the reason."""
        cfg = self.config
        if not port_is_free(cfg.host, cfg.port):
            raise RuntimeError(
                f"Port {cfg.port} on {cfg.host} is in use (another Prefect server?). Stop it, or choose "
                "another port: make serve PORT=4300."
            )
        try:
            self.start_simulator()
            self.start_server()
            self.register_blocks()
            self.start_serving()
            self.wire_self_healing()
        except BaseException:
            self.stop()
            raise

    def start_simulator(self) -> None:
        """The simulator with the scenario (in this process, on free loopback ports)."""
        cfg = self.config
        self.sim = self._exit.enter_context(
            running_simulator(cfg.scenario, state_dir=(cfg.state_dir / "simulator").resolve())
        )
        if cfg.sim_settings:
            self.sim.control.settings(**cfg.sim_settings)
        log.info("Simulator up: ARM %s, BAP %s.", self.sim.endpoints["arm"], self.sim.endpoints["bap"])

    def start_server(self) -> None:
        """`prefect server start` with the UI, then wait until its API answers."""
        cfg = self.config
        self.server = self._spawn(
            [sys.executable, "-m", "prefect", "server", "start", "--host", cfg.host, "--port", str(cfg.port)],
            self._log_file("server.log"),
        )
        deadline = time.monotonic() + cfg.startup_timeout
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(
                    f"The Prefect server exited with code {self.server.returncode}; see "
                    f"{cfg.prefect_home / 'server.log'}."
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{cfg.api_url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"The Prefect server did not answer within {cfg.startup_timeout:.0f} s; see "
                    f"{cfg.prefect_home / 'server.log'}."
                )
            time.sleep(0.5)
        log.info("Prefect server up: UI %s (home %s).", cfg.ui_url, cfg.prefect_home)

    def register_blocks(self) -> None:
        """`prefect block register -m blocks`, then the default blocks pointing at the simulator."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from blocks.simulator import save_simulator_blocks

        assert self.sim is not None
        done = subprocess.run(
            [sys.executable, "-m", "prefect", "block", "register", "-m", "blocks"],
            env=self.child_env(),
            capture_output=True,
            text=True,
            timeout=self.config.startup_timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"prefect block register -m blocks failed: {done.stdout}{done.stderr}")
        with temporary_settings(updates={PREFECT_API_URL: self.config.api_url}):
            save_simulator_blocks(self.sim.endpoints)
            self.wire_notifications()
        log.info("Block types registered; blocks saved for the simulator.")

    def wire_notifications(self) -> None:
        """Approval notifications and alerts to the webhook, or to the local sink when none is given."""
        from deployments.alerts import DEFAULT_ALERTS_BLOCK, ensure_alert_automations
        from deployments.notifications import catalog_flow_names, ensure_pause_automation, save_webhook_block

        url = self.config.webhook_url
        if url is None:
            self.sink = NotificationSink(self.config.state_dir.resolve() / "notifications.jsonl").start()
            url = self.sink.url
            log.info("Notifications go to the local sink: %s.", self.sink.path)
        flows = catalog_flow_names()
        automation = ensure_pause_automation(save_webhook_block(url), flows)
        log.info(
            "Approval notifications: automation %s -> webhook on %s (the URL may hold a token; not logged).",
            automation.name,
            urlsplit(url).hostname,
        )
        if self.config.alerts:
            alerts = ensure_alert_automations(save_webhook_block(url, name=DEFAULT_ALERTS_BLOCK), flows)
            log.info("Alerts: %s.", ", ".join(a.name for a in alerts))

    def wire_self_healing(self) -> None:
        """The automation that runs the remediate deployment on inventory findings (when it is served)."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from deployments.remediation import DISPATCHER, dispatcher_id, ensure_remediation_automation

        if DISPATCHER.split("/", 1)[1] not in self.served:
            return
        with temporary_settings(updates={PREFECT_API_URL: self.config.api_url}):
            automation = ensure_remediation_automation(dispatcher_id())
        log.info(
            "Self-healing: automation %s; CMK_REMEDIATE=%s (every repair waits for approval).",
            automation.name,
            self.child_env()["CMK_REMEDIATE"] or "(none)",
        )

    def start_serving(self) -> None:
        """`python -m deployments.serve` in its own process; wait until its deployments exist."""
        from deployments.catalog import CATALOG, resolve

        cfg = self.config
        specs = [s for s in CATALOG if cfg.only is None or s.name in cfg.only]
        expected = {spec.name for spec, _ in resolve(specs).available}
        args = [sys.executable, "-m", "deployments.serve"]
        if cfg.only:
            args += ["--only", *cfg.only]
        self.serve = self._spawn(args, cfg.serve_output or self._log_file("serve.log"))
        deadline = time.monotonic() + cfg.startup_timeout
        while True:
            if self.serve.poll() is not None:
                raise RuntimeError(f"Serving the deployments failed (exit code {self.serve.returncode}).")
            present = self.deployment_names()
            if expected <= present:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Deployments {sorted(expected - present)} did not appear in time.")
            time.sleep(0.5)
        self.served = sorted(expected)
        log.info("Serving %d deployment(s): %s.", len(expected), ", ".join(self.served))

    def deployment_names(self) -> set[str]:
        """The deployment names the server knows."""
        response = httpx.post(f"{self.config.api_url}/deployments/filter", json={}, timeout=10)
        response.raise_for_status()
        return {d["name"] for d in response.json()}

    # -- lifetime --------------------------------------------------------------------------------------
    def wait(self, stop: threading.Event) -> int:
        """Block until stop is set or a child exits; the exit code to return."""
        while not stop.wait(1.0):
            for name, proc in (("Prefect server", self.server), ("deployment server", self.serve)):
                if proc is not None and proc.poll() is not None:
                    log.error("%s exited unexpectedly (code %s).", name, proc.returncode)
                    return 1
        return 0

    def stop(self) -> None:
        """Stop serving, then the server, then the simulator; safe to call twice."""
        _stop_process(self.serve, "deployment server", signal.SIGINT, 20)
        _stop_process(self.server, "Prefect server", signal.SIGTERM, 20)
        self._exit.close()
        if self.sink is not None:
            self.sink.stop()
            self.sink = None
        for handle in self._logs:
            handle.close()
        self._logs.clear()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, start the stack, print how to use it, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m deployments.stack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "4200")))
    parser.add_argument("--scenario", default="demo", help="demo, large:N or a scenario JSON file")
    parser.add_argument("--link-seconds", type=float, default=10.0, help="simulated link/unlink duration")
    parser.add_argument(
        "--webhook-url",
        default=os.environ.get("CMK_APPROVAL_WEBHOOK_URL"),
        help="send approval notifications and alerts here (default: $CMK_APPROVAL_WEBHOOK_URL; none = the "
        "local sink, .state/notifications.jsonl)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = StackConfig(
        host=args.host,
        port=args.port,
        scenario=args.scenario,
        sim_settings={"link_seconds": args.link_seconds, "unlink_seconds": args.link_seconds},
        webhook_url=args.webhook_url,
        serve_output=sys.stdout,
    )
    if not port_is_free(config.host, config.port):
        print(
            f"make serve: port {config.port} is in use (another Prefect server?). Stop it, or choose "
            "another port: make serve PORT=4300.",
            file=sys.stderr,
        )
        return 1
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(config)
    try:
        stack.start()
    except RuntimeError as exc:
        print(f"make serve: {exc}", file=sys.stderr)
        return 1
    assert stack.sim is not None
    sub = stack.sim.endpoints["subscription_id"]
    print(
        f"\nPrefect UI: {config.ui_url}  (Deployments -> a flow -> Run -> Custom run)\n"
        f"Served: {', '.join(stack.served)}\n"
        f"Demo vault id: /subscriptions/{sub}/resourceGroups/rg-cmk/providers/Microsoft.KeyVault/vaults/kv-cmk-demo\n"
        "Answer an approval in the UI (the paused run's Resume form), or: "
        f"PREFECT_API_URL={config.api_url} .venv/bin/python -m flows.approval RUN_ID --approver NAME "
        "--decision approve --ticket CHG1\n"
        f"Notifications and alerts: {stack.sink.path if stack.sink else 'your webhook'}; self-healing: "
        f"CMK_REMEDIATE={stack.child_env()['CMK_REMEDIATE'] or '(none)'} (every repair waits for approval)\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    code = stack.wait(stop)
    print("Stopping: deployments, Prefect server, simulator ...", flush=True)
    stack.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
