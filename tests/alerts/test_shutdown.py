"""Stopping and cron: SIGTERM to a real daemon while it sends to a mail host that never
answers, and `run --once` exit codes when alerts are dead-lettered or left unknown."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from monitor.cli import EXIT_UNDELIVERED
from tests.alerts.conftest import World, subscriber
from tests.alerts.smtp_faults import SilentSmtp
from tests.conftest import run_cli
from tests.daemons import Daemon
from tests.servers import free_port

MakeWorld = Callable[..., World]


def no_server(world: World) -> None:
    with world.path.open("a", encoding="utf-8") as f:
        f.write('\n[server]\nlisten = ""\n')


def test_sigterm_during_a_batch_to_an_unreachable_mail_host_stops_within_the_send_timeout(
    make_world: MakeWorld, daemon_factory: Callable[[Path, str], Daemon]
) -> None:
    silent = SilentSmtp()
    try:
        world = make_world(subscriber("analysts", silent.url()), alerts='send_timeout = "3s"', now=datetime.now(UTC))
        no_server(world)
        assert world.publish(*(f"Kim Jong Un and Putin, report {i}" for i in range(5))) == 5
        daemon = daemon_factory(world.path, world.database_url)
        assert silent.accepted.wait(60), daemon.output()
        asked = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=60)
        took = time.monotonic() - asked
        log = daemon.output()
        assert code == 0, log
        assert took < 3 + 5, (took, log)  # the send in flight gets its 3 s, then it exits
        assert [ln for ln in log.splitlines() if ln.rstrip().endswith(" stopped")] != []
        assert sum(1 for ln in log.splitlines() if ln.rstrip().endswith(" stopped")) == 1
        assert "Traceback" not in log and "CancelledError" not in log, log
        # One send was tried and timed out (unknown, marked); the others were never tried,
        # and were put back due at once rather than left to their leases.
        assert len(silent.connections) == 1
        rows = world.alerts()
        assert sorted((a.status, a.unknown_sends) for a in rows) == [("pending", 0)] * 4 + [("pending", 1)]
    finally:
        silent.stop()


def test_run_once_exits_non_zero_when_an_alert_is_left_unknown(make_world: MakeWorld) -> None:
    silent = SilentSmtp()
    try:
        world = make_world(subscriber("analysts", silent.url()), alerts='send_timeout = "2s"', now=datetime.now(UTC))
        no_server(world)
        world.publish("Kim Jong Un meets Putin")
        done = run_cli("run", "--once", config=world.path, database_url=world.database_url)
        assert done.returncode == EXIT_UNDELIVERED == 4, done.stderr
        assert "1 unknown" in done.stderr
    finally:
        silent.stop()


def test_run_once_exits_non_zero_when_an_alert_is_dead_lettered(make_world: MakeWorld) -> None:
    closed = f"mailto://127.0.0.1:{free_port()}?mode=insecure&from=wirewatch@example.org&to=a@example.org"
    world = make_world(subscriber("analysts", closed), now=datetime.now(UTC))
    no_server(world)
    world.path.write_text(world.path.read_text().replace("max_attempts = 4", "max_attempts = 1"))
    assert world.publish("Kim Jong Un meets Putin") == 1
    done = run_cli("run", "--once", config=world.path, database_url=world.database_url)
    assert done.returncode == EXIT_UNDELIVERED, done.stderr
    assert "1 dead-lettered" in done.stderr
