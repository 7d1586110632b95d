"""A real streaming replica for the routing tests: a primary and a hot standby on loopback.

The primary is a fresh cluster (``initdb``), the standby a ``pg_basebackup
-R`` of it, each on a free port, run as the ``postgres`` user when the tests
run as root. Everything started here is stopped and removed at the end.
Tests skip when the PostgreSQL server binaries are not installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

BIN_DIRS = [os.environ.get("DBOPT_PG_BIN", ""), "/usr/lib/postgresql/15/bin"]


def _bin_dir() -> Path | None:
    for candidate in BIN_DIRS:
        if candidate and (Path(candidate) / "pg_basebackup").exists():
            return Path(candidate)
    found = shutil.which("pg_basebackup")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """One server started by the fixture."""

    bin: Path
    data: Path
    port: int
    log: Path
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, tool: str, *args: str) -> None:
        subprocess.run(  # noqa: S603 - PostgreSQL's own binaries, our arguments
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def execute(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []


@dataclass
class ReplicaPair:
    primary: Cluster
    replica: Cluster

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written."""
        target = self.primary.execute("SELECT pg_current_wal_lsn()")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.replica.execute(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if done[0][0]:
                return
            time.sleep(0.05)
        raise TimeoutError("the replica did not catch up")


def _user_prefix(base: Path) -> list[str]:
    if os.geteuid() != 0:
        return []
    shutil.chown(base, "postgres", "postgres")
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def replica_pair() -> Iterator[ReplicaPair]:
    """Start a primary and a streaming standby; stop and remove both afterwards."""
    bindir = _bin_dir()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_basebackup) are not installed")
    base = Path(tempfile.mkdtemp(prefix="dbopt-replica-"))
    as_user = _user_prefix(base)
    primary = Cluster(bindir, base / "primary", _free_port(), base / "primary.log", as_user)
    replica = Cluster(bindir, base / "replica", _free_port(), base / "replica.log", as_user)
    try:
        primary.run("initdb", "-D", str(primary.data), "-A", "trust", "-U", "postgres", "-N")
        settings = (
            f"port = {primary.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{base}'\nfsync = off\nmax_connections = 40\n"
            "shared_buffers = 16MB\nwal_level = replica\nmax_wal_senders = 4\n"
            "hot_standby = on\nhot_standby_feedback = on\n"
        )
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)
        primary.start()
        primary.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        with (replica.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {replica.port}\n")
        replica.start()
        pair = ReplicaPair(primary, replica)
        pair.wait_caught_up()
        yield pair
    finally:
        replica.stop("immediate")
        primary.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
