"""Secrets never leave: subscriber passwords and database passwords stay out of logs,
command output, stored errors and messages, even when delivery fails."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.feeds import rss
from tests.servers import FeedServer, WebhookReceiver, free_port

SMTP_SECRET = "smtp-pa55-Zq81x"
DB_SECRET = "db-pa55-Kw72y"
TOKEN = "hook-token-Jr55"


def test_secrets_stay_out_of_every_output(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, database_url: str
) -> None:
    if database_url.startswith("postgresql"):
        # Trust authentication ignores the password, so it can ride along in the URL.
        database_url = database_url.replace("://postgres@", f"://postgres:{DB_SECRET}@")
    url = feed_server.serve("/feed.xml", rss([("1", "Putin in Kursk", "")]))
    closed = free_port()  # nothing listens here: delivery fails and its error is stored
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[fetch]
host_delay = "0s"
full_text = false
[alerts]
first_poll = "alert"
[[sources]]
name = "wire"
url = "{url}"
[terms]
putin = ["Putin"]
[[rules]]
name = "putin"
query = "putin"
notify = ["ops"]
[[subscribers]]
name = "ops"
urls = [
  "mailto://wirewatch:${{SMTP_PASSWORD}}@127.0.0.1:{closed}?mode=insecure&to=ops@example.org&from=ww@example.org",
  "json://127.0.0.1:{closed}/hook?token=${{HOOK_TOKEN}}",
]
""",
        encoding="utf-8",
    )
    env = {"SMTP_PASSWORD": SMTP_SECRET, "HOOK_TOKEN": TOKEN}
    outputs = []
    for args in (
        ("run", "--once"),
        ("alerts", "--json"),
        ("alerts",),
        ("sources", "--json"),
        ("check",),
        ("notify-test", "ops"),
        ("-v", "run", "--once"),
    ):
        result = run_cli(*args, config=config, database_url=database_url, env=env)
        outputs.append(result.stdout + result.stderr)
    alerts = json.loads(outputs[1])["alerts"]
    assert alerts
    assert alerts[0]["last_error"]  # the failure is recorded...
    everything = "\n".join(outputs)
    for secret in (SMTP_SECRET, DB_SECRET, TOKEN):
        assert secret not in everything  # ...without the secret
    # A bad database URL is reported with its password hidden too.
    bad = run_cli("items", config=config, database_url=f"postgresql://u:{DB_SECRET}@127.0.0.1:{closed}/x", env=env)
    assert bad.returncode == 3
    assert DB_SECRET not in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr


def test_malformed_subscriber_urls_are_masked_in_third_party_log_lines(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, database_url: str
) -> None:
    """Apprise logs a URL it cannot parse whole: no scheme, or quotes left from an env file."""
    url = feed_server.serve("/feed.xml", rss([("1", "Putin in Kursk", "")]))
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[fetch]
host_delay = "0s"
full_text = false
[alerts]
first_poll = "alert"
[[sources]]
name = "wire"
url = "{url}"
[terms]
putin = ["Putin"]
[[rules]]
name = "putin"
query = "putin"
notify = ["ops"]
[[subscribers]]
name = "ops"
urls = ["${{NO_SCHEME_URL}}", "${{QUOTED_URL}}", "{webhook.url()}"]
""",
        encoding="utf-8",
    )
    no_scheme_token, quoted_token = "Tok-NoScheme-8812x", "Tok-Quoted-4471y"
    env = {
        "NO_SCHEME_URL": f"127.0.0.1:{webhook.port}/hook?token={no_scheme_token}",
        "QUOTED_URL": f'"json://127.0.0.1:{webhook.port}/hook?token={quoted_token}"',
    }
    outputs = []
    for args in (("-v", "run", "--once"), ("run", "--once"), ("notify-test", "ops"), ("-v", "notify-test", "ops")):
        result = run_cli(*args, config=config, database_url=database_url, env=env)
        outputs.append(result.stdout + result.stderr)
    everything = "\n".join(outputs)
    assert "apprise: Unsupported URL: ***" in everything  # Apprise did log it, masked
    for secret in (no_scheme_token, quoted_token, env["NO_SCHEME_URL"]):
        assert secret not in everything
    alerts = run_cli("alerts", "--json", config=config, database_url=database_url, env=env).stdout
    assert no_scheme_token not in alerts and quoted_token not in alerts
