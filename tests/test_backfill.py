"""Rule changes: a new rule sees only new items, unless it says ``backfill = true``;
a backfill runs once per query, not on every restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import run_cli
from tests.feeds import rss
from tests.servers import FeedServer, WebhookReceiver

BASE = """
[fetch]
host_delay = "0s"
full_text = false
obey_robots = false
[alerts]
first_poll = "silent"
[[sources]]
name = "wire"
url = "{url}"
[terms]
kursk = ["Kursk"]
putin = ["Putin"]
[[rules]]
name = "putin"
query = "putin"
notify = ["chat"]
{extra}
[[subscribers]]
name = "chat"
urls = ["{hook}"]
max_per_hour = 1000
"""


def _runner(config: Path, url: str, webhook: WebhookReceiver, database_url: str) -> Callable[[str], None]:
    """``run --once`` with BASE plus ``extra``, as an operator editing the file between runs."""

    def run(extra: str) -> None:
        config.write_text(BASE.format(url=url, hook=webhook.url(), extra=extra), encoding="utf-8")
        result = run_cli("run", "--once", config=config, database_url=database_url)
        assert result.returncode == 0, result.stderr

    return run


def test_backfill_alerts_stored_items_once_and_plain_rules_do_not(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    url = feed_server.serve("/feed.xml", rss([("1", "Shelling in Kursk", ""), ("2", "Kursk: evacuation", "")]))
    run = _runner(tmp_path / "config.toml", url, webhook, database_url)
    run("")  # first poll: stored silently
    assert webhook.posts == []
    run('[[rules]]\nname = "kursk"\nquery = "kursk"\nnotify = ["chat"]\n')  # a new plain rule: nothing
    assert webhook.posts == []
    backfilled = '[[rules]]\nname = "kursk-bf"\nquery = "kursk"\nnotify = ["chat"]\nbackfill = true\n'
    run(backfilled)
    assert len(webhook.posts) == 2
    assert all("kursk-bf" in p["message"] for p in webhook.posts)
    run(backfilled)  # a restart does not backfill again
    assert len(webhook.posts) == 2
    run(backfilled.replace('query = "kursk"', 'query = "kursk OR putin"'))  # changed query: backfilled once more,
    assert len(webhook.posts) == 2  # but the outbox never alerts an item twice for one rule


def test_a_changed_clause_backfills_the_rules_that_use_it_again(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    # The rule's query text stays the same; the clause it uses is what the operator edits.
    url = feed_server.serve(
        "/feed.xml", rss([("1", "Shelling in Kursk", ""), ("2", "Kursk: evacuation", ""), ("3", "Putin speaks", "")])
    )
    run = _runner(tmp_path / "config.toml", url, webhook, database_url)
    run("")  # first poll: stored silently
    rule = '[[rules]]\nname = "watch"\nquery = "watched"\nnotify = ["chat"]\nbackfill = true\n'
    run(f'{rule}[clauses]\nwatched = "kursk"\n')
    assert len(webhook.posts) == 2
    run(f'{rule}[clauses]\nwatched = "kursk"\n')  # a restart does not backfill again
    assert len(webhook.posts) == 2
    run(f'{rule}[clauses]\nwatched = "kursk OR putin"\n')  # the clause changed: the rule is backfilled again
    assert len(webhook.posts) == 3
    assert "Title: [Putin] speaks" in webhook.posts[-1]["message"]
