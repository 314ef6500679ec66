"""CpuPool: worker processes for the CPU stages (parse, normalise, fingerprint, match).

Parsing, normalising, MinHash and matching are Python: in the daemon's own process they
held the GIL that the event loop, the status server, the claims and the lease renewals
need (under a cold load of 1,000 feeds x 30, ``/healthz`` answered in 822 ms at p99 and a
mid-load item waited 139 s for its poll), and they filled one core of two.  A CpuPool runs
them in ``workers`` processes (one per core by default): the ingest thread hands each
batch's normalising and analysis to the pool, split across the workers, and waits
without the GIL; the feed poller's parser runs there too once the pool is up, and
article extraction once pages queue up for it (``extract_executor``).

It starts on first heavy use: a batch of fewer than ``inline_below`` entries is computed
in the calling thread, since a small poll (a test, a re-poll with three new items) is
cheaper than a round trip; with ``start_at`` (``run --once``), so is any batch too
small to pay for starting the workers while none runs.  Nothing durable lives in a
worker: what it computes is a pure function of what it is sent
(:mod:`monitor.services.analysis`), so a worker that dies fails its batch (every poll in
it is retried, as with a database error) and the next batch starts a new pool.
``forkserver``: forking a process that runs an event loop and threads is unsafe.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from monitor.core.models import RawItem, RuleHit
from monitor.core.text import korean_loaded
from monitor.runtime import Runtime
from monitor.services import analysis
from monitor.services.analysis import Analysed, Document, Job, MatchJob

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Below this many entries a batch is computed in the calling thread (measured: a round
# trip to a worker costs about as much as analysing a few dozen entries).
INLINE_BELOW = 64
# At most this many entries per call to a worker: pickling a call holds the GIL of the
# daemon's process for its whole length, so large batches go in several smaller calls.
CALL_ENTRIES = 256
# Normalising an entry costs about a fourteenth of analysing one (0.21 against 2.9 ms on
# the benchmark web's entries, 2026-12-07); counting four as one job errs towards the workers.
NORMALISE_PER_JOB = 4
# Article pages waiting for the extraction thread that start the pool (see extract_executor).
EXTRACT_BACKLOG = 4


def _chunks(sizes: Sequence[int], parts: int) -> list[tuple[int, int]]:
    """Cut ``len(sizes)`` consecutive units into at most ``parts`` runs of about equal total size."""
    total = sum(sizes)
    if parts <= 1 or len(sizes) <= 1 or total == 0:
        return [(0, len(sizes))]
    out: list[tuple[int, int]] = []
    start, acc, target = 0, 0, total / parts
    for n, size in enumerate(sizes):
        acc += size
        if acc >= target * (len(out) + 1) and len(out) < parts - 1 and n + 1 < len(sizes):
            out.append((start, n + 1))
            start = n + 1
    out.append((start, len(sizes)))
    return out


class CpuPool:
    """Worker processes for ingest's CPU work and the feed parser; an :class:`Analysis`."""

    def __init__(
        self,
        workers: int | None = None,
        *,
        inline_below: int = INLINE_BELOW,
        start_at: int | None = None,
        korean: bool = False,
    ) -> None:
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        # Load kiwipiepy's model in the forkserver, once for every worker (monitor.stages.korean).
        self.korean = korean
        self.inline_below = inline_below
        # While no worker runs, a batch of fewer jobs than this stays inline (see _inline).
        self.start_at = max(inline_below, start_at if start_at is not None else inline_below)
        # The daemon starts the workers for any batch worth a round trip; `run --once`
        # (a start_at above that) weighs starting them against each batch.
        self._eager = self.start_at == inline_below
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        # The runtime the workers were last sent, its token and its pickled config.
        self._runtime: Runtime | None = None
        self._token = 0
        self._blob = b""
        self._here = analysis.Inline()
        self._parse: _OffloadExecutor | None = None
        self._extract: _OffloadExecutor | None = None
        self.batches_offloaded = 0

    @property
    def started(self) -> bool:
        return self._pool is not None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the CPU pool is closed")
            if self._pool is None:
                # Imported here: a process that never starts workers (run --once over a
                # warm poll, the CLI's other commands) spares multiprocessing's queues (~20 ms).
                from concurrent.futures import ProcessPoolExecutor

                context = multiprocessing.get_context("forkserver")
                # Workers fork from a server that has imported the analysis once, and
                # loaded the Korean model once when the config watches Korean text.
                preload = ["monitor.services.analysis"] + (["monitor.stages.korean"] if self.korean else [])
                context.set_forkserver_preload(preload)
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=context, initializer=_exit_with, initargs=(os.getpid(),)
                )
                log.info("started %d CPU worker processes", self.workers)
            return self._pool

    def _run(self, calls: Sequence[tuple[Callable[..., T], tuple[Any, ...]]]) -> list[T]:
        """Run the calls on the workers, in parallel; their results in order.  A broken pool is dropped."""
        pool = self._executor()
        try:
            futures = [pool.submit(fn, *args) for fn, args in calls]
            return [f.result() for f in futures]
        except BrokenExecutor:
            log.error("a CPU worker process died; the batch fails and the next one starts new workers")
            self._discard(pool)
            raise

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        """Forget a broken pool (the next use starts new workers)."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def _inline(self, entries: int, per_job: int = 1, *, hangul: Callable[[], bool] | None = None) -> bool:
        """Whether a batch of ``entries`` is computed in the calling thread.

        Below ``inline_below`` always (a round trip costs more).  While no worker runs, also
        below ``start_at`` analysis jobs' worth of work (``per_job`` entries make one):
        starting the workers (a forkserver, interpreters importing the analysis) costs
        seconds, which a `run --once` finding a few dozen new entries would spend for nothing.

        Except Korean text (``hangul()``, asked only then) when the forkserver loads the Korean model
        (``korean``) and this process has not: matching it here would load a second copy
        (~1.1 CPU s and ~330 MiB for the life of the process), so it goes to the workers,
        whatever its size, once they run, and before that in a process that starts them
        for any batch worth a round trip (the daemon).  A `run --once` (``start_at``) keeps
        a small Korean batch here: it ends soon, and starting the workers for it cost more
        wall time than loading the model here (a wave of 150 new items: 5.0 s against 3.8).
        """
        inline = entries < self.inline_below or (self._pool is None and entries < self.start_at * per_job)
        if (
            inline
            and hangul is not None
            and self.korean
            and not korean_loaded()
            and (self._pool is not None or self._eager)
        ):
            return not hangul()
        return inline

    def _parts(self, entries: int) -> int:
        """How many calls a batch of ``entries`` goes in: one per worker, more for a large batch (CALL_ENTRIES)."""
        return max(self.workers, -(-entries // CALL_ENTRIES))

    # ------------------------------------------------------------------ Analysis

    def normalise(self, polls: Sequence[tuple[Sequence[RawItem], str | None]], now: datetime) -> list[Document]:
        sizes = [len(raws) for raws, _ in polls]
        if self._inline(sum(sizes), per_job=NORMALISE_PER_JOB):
            return self._here.normalise(polls, now)
        self.batches_offloaded += 1
        parts = self._run([(analysis.normalise, (polls[a:b], now)) for a, b in _chunks(sizes, self._parts(sum(sizes)))])
        return [doc for part in parts for doc in part]

    def analyse(self, rt: Runtime, jobs: Sequence[Job], now: datetime) -> list[Analysed]:
        if self._inline(len(jobs), hangul=lambda: any(j.hangul() for j in jobs)):
            return self._here.analyse(rt, jobs, now)
        token, blob = self._config(rt)
        sizes = [len(j.item.summary) + len(j.item.text) + 200 for j in jobs]
        parts = self._run(
            [
                (analysis.analyse_in_worker, (token, blob, jobs[a:b], now))
                for a, b in _chunks(sizes, self._parts(len(jobs)))
            ]
        )
        return [a for part in parts for a in part]

    def match(self, rt: Runtime, jobs: Sequence[MatchJob]) -> list[tuple[RuleHit, ...]]:
        """Enrichment's matching of article texts: inline as :meth:`analyse` decides (a round of
        a few dozen pages stays here), in the workers when its Korean text needs their model.

        A worker dying under it does not fail the round: its pages were read and are matched
        here instead (a round is small), and the next heavy call starts new workers.
        """
        if self._inline(len(jobs), hangul=lambda: any(j.hangul() for j in jobs)):
            return self._here.match(rt, jobs)
        token, blob = self._config(rt)
        sizes = [len(j.summary) + len(j.text) + 200 for j in jobs]
        calls = [(analysis.match_in_worker, (token, blob, jobs[a:b])) for a, b in _chunks(sizes, self.workers)]
        try:
            parts = self._run(calls)
        except BrokenExecutor:
            return self._here.match(rt, jobs)
        return [hits for part in parts for hits in part]

    def _config(self, rt: Runtime) -> tuple[int, bytes]:
        """The token and pickled config the workers know ``rt`` by (a new token after a reload)."""
        with self._lock:
            if rt is not self._runtime:
                self._runtime, self._token, self._blob = rt, self._token + 1, analysis.config_blob(rt.config)
            return self._token, self._blob

    # ------------------------------------------------------------------ executors for the poller

    def parse_executor(self) -> Executor:
        """An executor for the feed poller's parser: the workers once they run, else one thread."""
        if self._parse is None:
            self._parse = _OffloadExecutor(self, "wirewatch-parse")
        return self._parse

    def extract_executor(self) -> Executor:
        """An executor for article extraction (trafilatura): the workers, started once pages queue up.

        Enrichment reads a round's pages side by side, and reducing each to its text costs
        ~10 ms of CPU: in one thread a round of pages used one core of two (a warm poll
        reading 10,000 pages took 123 s of wall for 123 s of CPU).  A page or two (a test,
        a quiet day) stays in the thread; :data:`EXTRACT_BACKLOG` waiting start the pool.
        """
        if self._extract is None:
            self._extract = _OffloadExecutor(self, "wirewatch-extract", start_at=EXTRACT_BACKLOG)
        return self._extract

    def close(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        for executor in (self._parse, self._extract):
            if executor is not None:
                executor.shutdown(wait=wait, cancel_futures=True)
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)
            if wait:
                _stop_forkserver()


# How often a worker checks that the process that started it is still alive (see _exit_with).
PARENT_CHECK_S = 1.0


def _exit_with(parent: int) -> None:
    """Run in each worker as it starts: end it once ``parent``, the process that asked for it, is gone.

    A worker is the forkserver's child, not the daemon's, so the kernel tells it nothing
    when the daemon dies.  Killed with SIGKILL (the OOM killer, ``kill -9``, a crash test),
    the daemon used to leave its workers blocked on their call queue for good, and with
    them the forkserver, which lives while any worker holds its pipe: three processes and,
    with Korean text, the model's ~330 MiB each, until reboot.  A thread polls the
    parent's PID; a PID reused within a second of the death is the one case it misses.
    """

    def watch() -> None:
        while _alive(parent):
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="wirewatch-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: not gone, not another user's (a reused PID), not a zombie awaiting its reaper."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): the signal test above is all there is
    return state != b"Z"


def _stop_forkserver() -> None:
    """Stop the forkserver and wait for it, once its workers have ended.

    The workers are the forkserver's children, not ours: only when we wait for the
    forkserver (which reaps them) do their CPU seconds count among this process's
    children, as ``wait4`` and the benchmarks read them.  A later pool starts a new one.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is None:  # a Python without it: the forkserver ends with this process
        return
    try:
        stop()
    except OSError as exc:
        log.debug("stopping the forkserver: %s", exc)


class _OffloadExecutor(Executor):
    """Runs calls in the CPU pool when it is running, else in a thread of its own.

    With ``start_at``, a thread that has that many calls waiting starts the pool (and the
    call goes there): the work has outgrown one core.  A call that finds the pool broken
    (a worker died under it) fails like any exception of the call, and the pool is
    dropped so that the next call starts new workers.
    """

    def __init__(self, cpu: CpuPool, name: str, *, start_at: int | None = None) -> None:
        self.cpu = cpu
        self.start_at = start_at
        self.thread = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._waiting = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        pool = self.cpu._pool
        if pool is None and self.start_at is not None and self._waiting >= self.start_at:
            try:
                pool = self.cpu._executor()
            except RuntimeError:  # closed
                pool = None
        if pool is not None:
            try:
                future = pool.submit(fn, *args, **kwargs)
            except (BrokenExecutor, RuntimeError):  # a dead pool, or one shut down
                pass
            else:
                future.add_done_callback(functools.partial(self._check, pool=pool))
                return future
        with self._lock:
            self._waiting += 1
        future = self.thread.submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._lock:
            self._waiting -= 1

    def _check(self, future: Future[Any], *, pool: ProcessPoolExecutor) -> None:
        if not future.cancelled() and isinstance(future.exception(), BrokenExecutor):
            log.error("a CPU worker process died under a call; the next call starts new workers")
            self.cpu._discard(pool)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.thread.shutdown(wait=wait, cancel_futures=cancel_futures)
