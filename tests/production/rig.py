"""The production shape on one machine: a Prefect server on PostgreSQL, a process work pool, several workers.

The deployments come from the repository's prefect.yaml (`prefect deploy --all`, as docs/operations.md says), the
workers are `prefect worker start` processes, the simulator stands in for Azure. A worker can be killed with
SIGKILL together with the flow runs it started, as a host that dies would be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deployments.stack import Stack, StackConfig

POOL = "cmk-process"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class RigConfig(StackConfig):
    """A stack whose Prefect server keeps its state in PostgreSQL and whose runs go to process workers."""

    prefect_database_url: str = ""  # postgresql+asyncpg://...
    cmk_state_url: str = ""  # the product's state store; empty = CMK_STATE_DIR
    workers: int = 2
    worker_limit: int = 2
    deploy: tuple[str, ...] = ()  # prefect.yaml deployment names; empty = all
    extra_env: dict[str, str] = field(default_factory=dict)


def descendants(pid: int) -> list[int]:
    """Every process below pid (children first found by walking /proc's parent links)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class WorkerRig(Stack):
    """Start the simulator, the server on PostgreSQL, the blocks, the deployments and the workers."""

    config: RigConfig

    def __init__(self, config: RigConfig) -> None:
        super().__init__(config)
        self.workers: dict[str, subprocess.Popen[Any]] = {}

    def child_env(self) -> dict[str, str]:
        """The stack's environment plus the database, the state store and a quick worker poll."""
        env = super().child_env()
        env.update(
            {
                "PREFECT_API_DATABASE_CONNECTION_URL": self.config.prefect_database_url,
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
                "CMK_ORCHESTRATOR_HOME": str(REPO),
                "PYTHONPATH": str(REPO),
                **self.config.extra_env,
            }
        )
        if self.config.cmk_state_url:
            env["CMK_STATE_URL"] = self.config.cmk_state_url
        return env

    def start_serving(self) -> None:
        """Create the work pool, deploy prefect.yaml onto it, start the workers (instead of `serve`)."""
        self.prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
        names = [arg for name in self.config.deploy for arg in ("--name", name)] or ["--all"]
        self.prefect("--no-prompt", "deploy", *names, cwd=REPO)
        self.served = sorted(self.deployment_names())
        for index in range(1, self.config.workers + 1):
            self.start_worker(f"worker-{index}")

    def prefect(self, *args: str, cwd: Path | None = None) -> str:
        """One `prefect` CLI call against the rig's server; its output, or an error with it."""
        done = subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            env=self.child_env(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=self.config.startup_timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        """Start everything, timing each step (the rig is slow to build; the figures say where the time goes)."""
        self.timings: dict[str, float] = {}
        for step in ("start_simulator", "start_server", "register_blocks", "start_serving"):
            began = time.monotonic()
            try:
                getattr(self, step)()
            except BaseException:
                self.stop()
                raise
            self.timings[step] = round(time.monotonic() - began, 1)

    def start_worker(self, name: str) -> None:
        """`prefect worker start` on the pool; wait until the server lists it online."""
        args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--name", name]
        args += ["--limit", str(self.config.worker_limit), "--type", "process"]
        self.workers[name] = self._spawn(args, self._log_file(f"{name}.log"))
        deadline = time.monotonic() + self.config.startup_timeout
        while name not in self.online_workers():
            if self.workers[name].poll() is not None:
                raise RuntimeError(f"{name} exited with code {self.workers[name].returncode}.")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not come online within {self.config.startup_timeout:.0f} s.")
            time.sleep(0.5)

    def online_workers(self) -> set[str]:
        """The names of the pool's workers the server sees as online."""
        response = httpx.post(f"{self.config.api_url}/work_pools/{POOL}/workers/filter", json={}, timeout=10)
        if response.status_code == 404:
            return set()
        response.raise_for_status()
        return {w["name"] for w in response.json() if w.get("status") == "ONLINE"}

    def worker_of(self, flow_run_id: Any) -> str | None:
        """Which of the rig's workers runs the flow run (its process is a descendant of that worker)."""
        marker = str(flow_run_id).encode()
        for name, proc in self.workers.items():
            if proc.poll() is not None:
                continue
            for pid in descendants(proc.pid):
                with contextlib.suppress(OSError):
                    if marker in Path(f"/proc/{pid}/environ").read_bytes():
                        return name
        return None

    def kill_worker(self, name: str) -> int:
        """SIGKILL the worker and every process it started, as if its host died; how many processes died."""
        proc = self.workers[name]
        victims = [*descendants(proc.pid), proc.pid]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return len(victims)

    def stop(self) -> None:
        """Stop the workers, then the rest of the stack."""
        for proc in self.workers.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        super().stop()
