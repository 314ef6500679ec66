"""Worker processes: how ``wirewatch run`` uses every core of its machine.

Python runs one thread of Python at a time, and parsing, normalising, matching and
clustering are Python: one process fills one core.  So on PostgreSQL ``wirewatch run``
starts ``processes - 1`` children running ``wirewatch run --role worker`` (the very code
path of workers on other machines: each claims due sources by lease, has its own fetchers
and its own ingest writer, and dispatches due alerts), restarts one that dies, and stops
them with itself.  On SQLite, which has one writer at a time, the daemon stays one process.

A child dies with its parent (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the daemon never
leaves orphans polling and sending; what either was doing is recovered by the leases.
Responsible for starting, watching and stopping the children; it must not do their work.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# Set in a child's environment to the parent's pid: the child serves no /healthz of its own.
CHILD_OF = "WIREWATCH_WORKER_OF"
# A child that keeps dying is restarted at most this often.
RESTART_DELAY = 5.0


def worker_count(configured: int, dialect: str) -> int:
    """How many extra worker processes the daemon starts (0 on SQLite)."""
    if dialect != "postgresql":
        return 0
    total = configured or (os.cpu_count() or 1)
    return max(0, total - 1)


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The command line of a worker: the parent's options, then ``run --role worker``.

    ``--database-url`` is dropped (the worker reads it from the environment, where its
    password stays out of ``ps``), and so are ``run``, ``--once`` and ``--role``.
    """
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("run", "--once"):
            continue
        if arg in ("--role", "--database-url"):
            skip = True
            continue
        if arg.startswith(("--role=", "--database-url=")):
            continue
        out.append(arg)
    return [sys.executable, "-m", "monitor", *out, "run", "--role", "worker"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerProcesses:
    """``count`` children running ``argv``, restarted when they die, stopped with us."""

    def __init__(self, count: int, argv: list[str], env: dict[str, str]) -> None:
        self.count = count
        self.argv = argv
        self.env = env
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def _spawn(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
        log.info("worker process %d started", child.pid)
        return child

    def start(self) -> None:
        self.children = [self._spawn() for _ in range(self.count)]

    async def watch(self) -> None:
        """Restart a child that exits while we are running."""
        last_restart = 0.0
        while not self.stopping:
            await asyncio.sleep(1.0)
            for i, child in enumerate(self.children):
                code = child.poll()
                if code is None or self.stopping:
                    continue
                if time.monotonic() - last_restart < RESTART_DELAY:
                    continue
                log.warning("worker process %d exited with %d; starting another", child.pid, code)
                self.children[i] = self._spawn()
                last_restart = time.monotonic()

    async def stop(self, timeout: float) -> None:
        """SIGTERM every child and wait for them (they finish in-flight work), then SIGKILL."""
        self.stopping = True
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(c.poll() is None for c in self.children) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for child in self.children:
            if child.poll() is None:
                log.warning("worker process %d did not stop in %.0fs; killing it", child.pid, timeout)
                child.kill()
                child.wait()
