"""Alert-delivery fixtures: a frozen clock and a small world of real parts around it.

The world is the real thing, in process: a config file loaded by ``load_config``, a
migrated SQLite or PostgreSQL store, the real :class:`Ingestor` (so alerts are enqueued
exactly as the daemon enqueues them, digest times included) and the real
:class:`Dispatcher` with the real Apprise notifier, sending to aiosmtpd and a webhook
receiver on loopback.  The only fake is the clock.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.app import open_store
from monitor.config import Config, load_config
from monitor.core.models import PollOutcome, RawItem
from monitor.notify.apprise import AppriseNotifier
from monitor.runtime import Runtime, make_runtime
from monitor.services.dispatch import Dispatcher, DispatchSummary
from monitor.services.ingest import Ingestor
from monitor.store.sql import AlertRow, SqlStore

SOURCE = "wire"
VOCABULARY = [
    "harbour",
    "grain",
    "ministry",
    "delegation",
    "railway",
    "winter",
    "satellite",
    "border",
    "bridge",
    "election",
    "budget",
    "factory",
    "festival",
    "drought",
    "summit",
    "envoy",
    "convoy",
    "market",
    "vaccine",
    "orchestra",
    "museum",
    "airline",
    "pipeline",
    "tariff",
    "stadium",
    "glacier",
    "typhoon",
    "harvest",
    "ferry",
    "reactor",
    "bank",
    "court",
    "parliament",
    "embassy",
    "academy",
    "refinery",
    "port",
    "canal",
    "cable",
    "tunnel",
    "forest",
    "river",
    "valley",
    "island",
]

TERMS = """
[terms]
kim_jong_un = ["Kim Jong Un", "Kim Jong-un", "كيم جونغ أون", "Ким Чен Ын", "김정은"]
putin = ["Putin", "بوتين", "Путин", "푸틴"]
kursk = ["Kursk", "كورسك", "Курск", "쿠르스크"]
troops = ["troops", "soldiers", "جنود", "قوات", "войска", "солдаты", "병력"]
"""


class FrozenClock:
    """The only fake: time stands still until the test moves it."""

    def __init__(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class World:
    """Config + store + ingest + dispatch, wired as :func:`monitor.app.make_app` wires them."""

    path: Path
    database_url: str
    clock: FrozenClock
    store: SqlStore
    config: Config
    runtime: Runtime
    env: dict[str, str] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _dispatcher: Dispatcher | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        """The world's one dispatcher (it keeps refused outcomes in memory, like a process)."""
        if self._dispatcher is None:
            self._dispatcher = self.new_dispatcher()
        return self._dispatcher

    def new_dispatcher(self, store: SqlStore | None = None) -> Dispatcher:
        """Another dispatcher, as another worker process would run it."""
        return Dispatcher(store or self.store, AppriseNotifier(), lambda: self.runtime, self.clock, env=self.env)

    def dispatch(self, mark_patience: float = 0.0) -> DispatchSummary:
        return self.dispatcher.dispatch_due(mark_patience)

    def source_id(self) -> int:
        self.store.sync_sources([(s.name, s.type, s.url) for s in self.config.sources], self.clock())
        return next(s.id for s in self.store.source_states([SOURCE]))

    def publish(self, *titles: str, body: str = "", url: str | None = None) -> int:
        """One poll of the source bringing ``titles`` as new items; returns alerts queued.

        Each item gets a body of its own words, so story clustering sees different
        stories, not syndicated copies of one.
        """
        items = []
        for title in titles:
            n = next(self._ids)
            words = random.Random(n).choices(VOCABULARY, k=30)
            items.append(
                RawItem(
                    guid=f"item-{n}",
                    url=url or f"https://news.example.org/{n}",
                    title=title,
                    summary=body or f"{title}. {' '.join(words)}.",
                    published=self.clock() - timedelta(minutes=1),
                )
            )
        before = len(self.alerts())
        ingestor = Ingestor(self.store, lambda: self.runtime, self.clock)
        summary = ingestor.ingest(
            PollOutcome(source_id=self.source_id(), source=SOURCE, status="ok", items=tuple(items))
        )
        assert summary.status == "ok", summary
        return len(self.alerts()) - before

    def alerts(self, status: str | None = None) -> list[AlertRow]:
        return self.store.alert_rows(status=status)


def write_config(path: Path, subscribers: str, rules: str = "", alerts: str = "") -> Path:
    rules = (
        rules
        or """
[[rules]]
name = "kim-putin"
query = 'kim_jong_un AND putin'
notify = ["analysts"]
"""
    )
    path.write_text(
        f"""
[alerts]
first_poll = "alert"
max_age = "3d"
retry_backoff = "1m"
max_attempts = 4
{alerts}

[[sources]]
name = "{SOURCE}"
url = "https://news.example.org/feed.xml"
enabled = false
{TERMS}
{rules}
{subscribers}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def make_world(tmp_path: Path, database_url: str) -> Iterator[Callable[..., World]]:
    stores: list[SqlStore] = []

    def make(subscribers: str, *, now: datetime, rules: str = "", alerts: str = "") -> World:
        path = write_config(tmp_path / "config.toml", subscribers, rules, alerts)
        config = load_config(path, env={})
        store = open_store(database_url, migrate_first=True)
        stores.append(store)
        return World(path, database_url, FrozenClock(now), store, config, make_runtime(config))

    yield make
    for store in stores:
        store.engine.dispose()


def subscriber(name: str, *urls: str, **settings: object) -> str:
    lines = [f'[[subscribers]]\nname = "{name}"', "urls = [" + ", ".join(f'"{u}"' for u in urls) + "]"]
    for key, value in settings.items():
        lines.append(
            f"{key} = {value!r}".replace("'", '"')
            if not isinstance(value, list)
            else f"{key} = {value}".replace("'", '"')
        )
    return "\n".join(lines) + "\n"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
