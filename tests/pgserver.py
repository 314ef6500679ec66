"""A throwaway PostgreSQL server for tests that must restart or kill their database.

Restarting the machine's own cluster would break every other test's connections (and
anything else on the machine), so such a test starts its own: ``initdb`` in a temporary
directory, ``pg_ctl start`` on a free loopback port, trust authentication, and
``pg_ctl stop`` at the end.  The binaries are found with ``pg_config --bindir`` or under
``/usr/lib/postgresql/*/bin``.  PostgreSQL refuses to run as root, so as root the server
runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def postgres_bindir() -> Path:
    """Where initdb and pg_ctl live on this machine."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found: install PostgreSQL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """One private PostgreSQL server; ``url`` points at its ``postgres`` database."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        # Its own top-level temp directory: as root the server runs as ``postgres``, which
        # cannot enter pytest's per-user temp tree.
        self.root = Path(tempfile.mkdtemp(prefix="wirewatch-pg-"))
        root = self.root
        self.data = root / "data"
        self.port = _free_port()
        self.log = root / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
        if self._as_user:
            shutil.chown(root, "postgres")
            root.chmod(0o700)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        cmd = [*self._as_user, *argv]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            output = f"{result.stderr}{result.stdout}{log}"
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}): {output}")

    def start(self) -> ThrowawayPostgres:
        if not self.data.exists():
            self._run(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"
            )
        self._pg_ctl("start", "-w", "-t", "60", "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1")
        return self

    def restart(self) -> None:
        """Stop (fast: every client connection is cut) and start again on the same port."""
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
        self.start()

    def stop(self) -> None:
        """Stop the server and remove its files."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "60")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"throwaway PostgreSQL did not accept connections on port {self.port}")
