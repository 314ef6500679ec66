"""SQLite durability: a commit is on disk before the caller acts on it, and a database file
deleted or replaced under a running daemon fails loudly instead of losing everything.

Power loss cannot be caused from a test, so the fault test watches the property that
decides it: with ``synchronous=FULL`` in WAL mode, every commit syncs the WAL
(``fdatasync``) before it returns; with ``NORMAL`` it does not, and the issue-18 probe
(file system forced read-only) then rolled back 20 of 36 marks.  The system calls are
read with strace, in a real child process marking real outbox rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.errors import StorageError
from monitor.store.sql import SqlStore, make_engine
from tests.conftest import ROOT
from tests.daemons import Daemon
from tests.feeds import rss
from tests.servers import FeedServer, WebhookReceiver, free_port
from tests.test_daemon import CONFIG, http_get

# Marks three rows one commit at a time and writes a marker to stdout after each commit
# returns: the marker stands for "the caller acted on it" (sent the next alert).
CHILD = r"""
import os, sys
from sqlalchemy import text
from monitor.store.sql import make_engine
engine = make_engine(sys.argv[1])
if sys.argv[2] == "normal":
    from sqlalchemy import event
    event.listen(engine, "connect", lambda c, r: c.execute("PRAGMA synchronous=NORMAL"))
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE marks (id INTEGER PRIMARY KEY, sent INTEGER)"))
    conn.execute(text("INSERT INTO marks (sent) VALUES (0), (0), (0)"))
os.write(1, b"READY\n")
for i in (1, 2, 3):
    with engine.begin() as conn:
        conn.execute(text("UPDATE marks SET sent = 1 WHERE id = :i"), {"i": i})
    os.write(1, b"MARKED\n")
"""


def _syncs_before_each_mark(tmp_path: Path, mode: str) -> list[int]:
    db = tmp_path / f"{mode}.db"
    trace = tmp_path / f"{mode}.trace"
    cmd = ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,write", "-o", str(trace)]
    cmd += [sys.executable, "-c", CHILD, f"sqlite:///{db}", mode]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    if result.returncode != 0 and "ptrace" in result.stderr:
        pytest.skip(f"strace cannot trace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("MARKED") == 3
    counts, syncs = [], 0
    for line in trace.read_text().splitlines():
        if re.search(r"\bf(data)?sync\(\d+\)\s+= 0", line):
            syncs += 1
        elif re.search(r'write\(1, "(MARKED|READY)', line):
            counts.append(syncs)
            syncs = 0
    return counts[1:]  # the first stretch is the set-up


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_every_commit_is_synced_before_it_returns(tmp_path: Path) -> None:
    full = _syncs_before_each_mark(tmp_path, "full")
    assert len(full) == 3 and all(n >= 1 for n in full), full
    # The same code under NORMAL does not sync at commit: the test can tell them apart.
    normal = _syncs_before_each_mark(tmp_path, "normal")
    assert normal == [0, 0, 0], normal


def test_committed_marks_survive_a_killed_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD + "\nimport time; time.sleep(60)\n", url, "full"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "READY"
    for _ in range(3):
        assert child.stdout.readline().strip() == "MARKED"
    child.kill()  # while it still holds the database open
    child.wait()
    child.stdout.close()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT sum(sent) FROM marks").scalar() == 3
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


@pytest.mark.parametrize("fault", ["deleted", "replaced"])
def test_a_file_deleted_or_replaced_under_the_store_fails_every_transaction(tmp_path: Path, fault: str) -> None:
    path = tmp_path / "w.db"
    engine = make_engine(f"sqlite:///{path}")
    store = SqlStore(engine)
    try:
        store.ping()
        if fault == "deleted":
            path.unlink()
        else:
            other = tmp_path / "other.db"
            other.write_bytes(b"")
            os.replace(other, path)
        for _ in range(3):  # sticky: a reconnect does not make it go away
            with pytest.raises(StorageError, match=fault):
                store.ping()
        if fault == "deleted":
            assert not path.exists()  # a reconnect did not create an empty file in its place
    finally:
        engine.dispose()


def test_daemon_reports_unhealthy_when_its_database_file_is_deleted(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    daemon_factory: Callable[[Path, str], Daemon],
) -> None:
    path = tmp_path / "live.db"
    port = free_port()
    url = feed_server.serve("/feed.xml", rss([("1", "Putin visits Kursk", "Troops.")]))
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(url=url, hook=webhook.url(), rule="r", query="putin", port=port))
    daemon = daemon_factory(config, f"sqlite:///{path}")
    daemon.wait_for(lambda: len(webhook.posts) == 1, "the first alert")
    assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    path.unlink()
    daemon.wait_for(lambda: "was deleted while wirewatch was running" in daemon.output(), "the loud failure")
    status, body = http_get(f"http://127.0.0.1:{port}/healthz")
    assert status == 503
    assert "deleted" in json.loads(body)["database"]
    assert not path.exists()
    assert daemon.stop() == 0
    assert daemon.output().count("CRITICAL") <= 3  # said once per job, not once per tick
