"""A throwaway PostgreSQL server from Debian's `postgresql` package: initdb in a temp dir, a free port, torn down."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy

INSTALL_HINT = "PostgreSQL is missing: run `make postgresql` (as root) or `apt-get install -y postgresql`."


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens, and how to make a fresh database on it."""

    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) of one database."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database's URL."""
        name = f"cmk_{uuid.uuid4().hex[:12]}"
        engine = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server for the block; initdb refuses root, so as root it runs as the `postgres` user."""
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError(INSTALL_HINT + " (no `postgres` user)") from exc
        as_user = ["runuser", "-u", "postgres", "--"]
    root = tempfile.mkdtemp(prefix="cmk-pg-")
    data = os.path.join(root, "data")
    if as_user:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True}
    try:
        subprocess.run(
            [*as_user, _bin("initdb"), "-D", data, "-U", "cmk", "--auth=trust", "-E", "UTF8"], **quiet
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = os.path.join(root, "server.log")
        subprocess.run(
            [*as_user, _bin("pg_ctl"), "-D", data, "-l", log, "-o", options, "-w", "start"], **quiet
        )
        server = PostgresServer("127.0.0.1", port, "cmk")
        deadline = time.monotonic() + 30
        while True:
            try:
                engine = sqlalchemy.create_engine(server.url())
                with engine.connect():
                    pass
                engine.dispose()
                break
            except sqlalchemy.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(
                [*as_user, _bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)
