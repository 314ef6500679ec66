"""The command line as a person meets it (issue 16), through the real ``wirewatch`` process.

Every case of the issue: closed pipes, usage errors with exit 2, unknown names, exit 4 of
`run --once`, options after the subcommand, headers and "(none)", local and UTC times to
the second, colour only on a terminal (a real pty) and never with NO_COLOR, `check`
judging subscriber URLs with Apprise's parser, read-only commands on an invalid config,
the source actions and OPML.  Loopback servers, SQLite and PostgreSQL are real.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.feeds import rss
from tests.servers import FeedServer, free_port

TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"  # to the second, no microseconds, no offset
SEOUL = {"TZ": "Asia/Seoul"}


def write_config(tmp_path: Path, sources: list[tuple[str, str]], extra: str = "", enabled: bool = True) -> Path:
    blocks = "".join(
        f'[[sources]]\nname = "{name}"\nurl = "{url}"\ninterval = "5m"\nenabled = {str(enabled).lower()}\n\n'
        for name, url in sources
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[storage]
url = "sqlite:///{tmp_path / "w.db"}"

[fetch]
timeout = "5s"
host_delay = "0s"
obey_robots = false
full_text = false

[alerts]
first_poll = "alert"
max_age = "3650d"

{blocks}
[terms]
putin = ["Putin", "Путин"]

[[rules]]
name = "putin"
query = "putin"
notify = ["chat"]

[[subscribers]]
name = "chat"
urls = ["json://127.0.0.1:{free_port()}/hook"]
{extra}
""",
        encoding="utf-8",
    )
    return path


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command with arguments exactly as given (global options anywhere)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_") and k != "NO_COLOR"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=full_env,
        check=False,
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- usage errors


def test_usage_errors_exit_2_naming_the_flag_and_the_accepted_forms(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, [("wire", "http://127.0.0.1:9/feed.xml")])
    since = run_cli("items", "--since", "5days", config=config, database_url=database_url)
    assert since.returncode == 2
    assert since.stdout == ""
    assert since.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--since': '5days' is not a duration; use a number and a unit: "
        "30s, 10m, 24h, 7d or 2w"
    )
    assert "Traceback" not in since.stderr
    limit = run_cli("items", "--limit", "-1", config=config, database_url=database_url)
    assert limit.returncode == 2
    assert limit.stderr.splitlines()[-1] == "Error: Invalid value for '--limit': -1 is not in the range x>=1."
    for command in (["stories", "--since", "0s"], ["rules", "test", "--since", "soon"], ["alerts", "--limit", "0"]):
        result = run_cli(*command, config=config, database_url=database_url)
        assert result.returncode == 2, command
        assert "Error: Invalid value for" in result.stderr and "Traceback" not in result.stderr

    # Unknown names are errors, not empty results.
    nosuch = run_cli("items", "--source", "nosuch", config=config, database_url=database_url)
    assert nosuch.returncode == 2
    assert (
        nosuch.stderr.splitlines()[-1]
        == "Error: Invalid value for '--source': no source named 'nosuch' (sources: wire)"
    )
    typo = run_cli("items", "--source", "wir", config=config, database_url=database_url)
    assert (
        typo.stderr.splitlines()[-1]
        == "Error: Invalid value for '--source': no source named 'wir', did you mean 'wire'?"
    )
    retry = run_cli("alerts", "retry", "99999", config=config, database_url=database_url)
    assert retry.returncode == 2
    assert retry.stderr.splitlines()[-1] == "Error: Invalid value for 'ID': no alert #99999 (see `wirewatch alerts`)"
    rule = run_cli("rules", "test", "--rule", "nope", config=config, database_url=database_url)
    assert rule.returncode == 2
    assert rule.stderr.splitlines()[-1] == "Error: Invalid value for '--rule': no rule named 'nope' (rules: putin)"
    sub = run_cli("notify-test", "chatt", config=config)
    assert sub.returncode == 2
    assert sub.stderr.splitlines()[-1] == (
        "Error: Invalid value for 'SUBSCRIBER': no subscriber named 'chatt', did you mean 'chat'?"
    )
    for action in ("poll", "reset", "enable", "disable"):
        result = run_cli("sources", action, "nosuch", config=config, database_url=database_url)
        assert result.returncode == 2, action
        assert (
            result.stderr.splitlines()[-1]
            == "Error: Invalid value for 'NAME': no source named 'nosuch' (sources: wire)"
        )


def test_options_after_the_command_help_version_and_groups(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("wire", "http://127.0.0.1:9/feed.xml")])
    after = cli("check", "--config", str(config))
    before = cli("--config", str(config), "check")
    expected = f"{config}: OK (1 sources, 1 terms, 1 rules, 1 subscribers)\n"
    assert after.returncode == 0 and after.stdout == expected, after.stderr
    assert before.returncode == 0 and before.stdout == expected
    version = cli("--version")
    assert version.returncode == 0 and re.fullmatch(r"wirewatch \d+\.\d+\.\d+\S*\n", version.stdout)
    # `wirewatch rules` shows the rules group's help, not the top-level one.
    rules = cli("rules")
    assert rules.returncode == 2
    assert "Usage: wirewatch rules [OPTIONS] COMMAND [ARGS]..." in rules.stdout + rules.stderr
    assert "Backtest rules over stored items" in rules.stdout + rules.stderr
    helps = cli("items", "--help")
    assert helps.returncode == 0
    for flag, words in (
        ("--json", "one JSON document"),
        ("--source", "only items of this source"),
        ("--limit", "at most"),
    ):
        assert re.search(rf"{flag}\S*\s+.*{words}", helps.stdout), (flag, helps.stdout)
    completion = cli("completion", "bash")
    assert completion.returncode == 0 and "_WIREWATCH_COMPLETE" in completion.stdout
    # The script really completes: click's protocol, as bash would call it.
    env = {"_WIREWATCH_COMPLETE": "bash_complete", "COMP_WORDS": "wirewatch sour", "COMP_CWORD": "1"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "wirewatch")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        cwd=ROOT,
    )
    assert "plain,sources" in proc.stdout.splitlines()


# --------------------------------------------------------------------------- tables and times


def test_tables_have_headers_local_times_and_none(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed.xml", rss([("1", "Putin speaks", "Путин"), ("2", "Weather", "cold")]))
    config = write_config(tmp_path, [("wire", url), ("down", "http://127.0.0.1:9/feed.xml")])
    empty = run_cli("items", config=config, database_url=database_url)
    assert empty.returncode == 0 and empty.stdout == "(none)\n"
    for command in ("alerts", "stories"):
        result = run_cli(command, config=config, database_url=database_url)
        assert result.returncode == 0 and result.stdout == "(none)\n", command

    run_cli("run", "--once", config=config, database_url=database_url, env=SEOUL)
    seoul = run_cli("sources", config=config, database_url=database_url, env=SEOUL)
    assert seoul.returncode == 0, seoul.stderr
    out = seoul.stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ITEMS", "LAST", "OK", "NEXT", "EVERY", "NOTE"]
    assert re.fullmatch(rf"down +failing +0 +- +{TIME} +- +1 failure: connection refused", out[1]), out[1]
    assert re.fullmatch(rf"wire +ok +2 +{TIME} +{TIME} +\S+", out[2]), out[2]
    # Columns line up: every row's STATUS starts under the header's.
    assert len({line.index(word) for line, word in zip(out, ("STATUS", "failing", "ok"), strict=True)}) == 1
    assert not any(line.endswith(" ") for line in out)

    local = json.loads(run_cli("sources", "--json", config=config, database_url=database_url).stdout)
    wire = next(s for s in local["sources"] if s["name"] == "wire")
    utc_when = wire["last_success"]
    assert utc_when.endswith("+00:00")  # JSON keeps ISO 8601 with a zone (the contract)
    from datetime import datetime, timedelta

    parsed = datetime.fromisoformat(utc_when)
    in_seoul = (parsed + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
    assert in_seoul in out[2]
    utc = run_cli("sources", "--utc", config=config, database_url=database_url, env=SEOUL)
    assert parsed.strftime("%Y-%m-%d %H:%M:%SZ") in utc.stdout

    items = run_cli("items", config=config, database_url=database_url, env=SEOUL).stdout.splitlines()
    assert items[0].split() == ["FIRST", "SEEN", "SOURCE", "LANG", "TITLE", "URL"]
    assert len(items) == 3
    assert re.fullmatch(
        rf"{TIME} +wire +- +(Putin speaks|Weather) +https://news\.example\.org/\d\?utm_source=rss", items[1]
    )

    alerts = run_cli("alerts", config=config, database_url=database_url, env=SEOUL).stdout.splitlines()
    assert alerts[0].split() == ["ID", "STATUS", "RULE", "SUBSCRIBER", "TRIES", "TIME", "TITLE", "NOTE"]
    assert re.fullmatch(rf" *\d+ +(pending|failed) +putin +chat +\d +{TIME} +Putin speaks +.*", alerts[1]), alerts[1]
    stories = run_cli("stories", config=config, database_url=database_url, env=SEOUL).stdout.splitlines()
    assert stories[0].split() == ["ID", "FIRST", "SEEN", "SIZE", "LANGS", "OUTLETS", "TITLE"]
    assert len(stories) == 3


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # Rows far beyond the pipe's buffer (64 kB) and what the reader took, so the write
    # really fails whatever the timing.
    many = [(f"source-{i:04d}-" + "n" * 48, f"http://127.0.0.1:9/{i}/" + "u" * 300 + ".xml") for i in range(1500)]
    config = write_config(tmp_path, many)
    for command in (["sources"], ["sources", "export"], ["sources", "--json"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")},
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=120) == 141, (command, err)
        assert err == "", (command, err)


# --------------------------------------------------------------------------- colour on a terminal


def _on_a_pty(args: list[str], env: dict[str, str]) -> str:
    """Run the command with its stdout on a real pseudo-terminal; return what it showed."""
    main, sub = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        stdout=sub,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_") and k != "NO_COLOR"}, **env},
    )
    os.close(sub)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the other end closed
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(main)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == 0, err
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("down", "http://127.0.0.1:9/feed.xml")])
    assert cli("--config", str(config), "run", "--once").returncode == 4
    args = ["sources", "--config", str(config)]
    shown = _on_a_pty(args, {"COLUMNS": "150"})
    assert "\x1b[" in shown  # bold header, red failing row
    assert "NAME" in shown and "failing" in shown
    plain = _on_a_pty(args, {"COLUMNS": "150", "NO_COLOR": "1"})
    assert "\x1b[" not in plain
    assert "NAME" in plain and "failing" in plain
    piped = cli(*args)
    assert "\x1b[" not in piped.stdout


# --------------------------------------------------------------------------- run --once and its logs


def test_run_once_exit_4_one_line_per_failure_and_a_hint(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, [("one", "http://127.0.0.1:9/a.xml"), ("two", "http://127.0.0.1:9/b.xml")])
    result = run_cli("run", "--once", config=config, database_url=database_url)
    assert result.returncode == 4, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == (
        "polled 2 sources (0 ok, 2 failed): 0 new items, 0 matched, 0 alerts queued; sent 0, retrying 0, failed 0, "
        "unknown 0"
    )
    assert re.fullmatch(rf"next due: (one|two) at {TIME} \(in 9m\)|next due: (one|two) at {TIME} \(in 10m\)", out[1])
    assert out[2] == "every source failed: this machine probably has no network or no DNS (see `wirewatch sources`)"
    # One log line per failure, with the cause in words and when it is tried again.
    for name in ("one", "two"):
        mentions = [line for line in result.stderr.splitlines() if f" {name}" in line or f"{name}:" in line]
        assert len(mentions) == 1, result.stderr
        assert mentions[0].endswith(f"source {name}: connection refused (next try in 10m)"), mentions[0]
    again = run_cli("run", "--once", config=config, database_url=database_url)
    assert "connection refused (next try in 20m, 2 failures in a row)" in again.stderr


def test_run_once_exit_0_when_a_source_answers(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed.xml", rss([("1", "Weather", "cold")]))
    config = write_config(tmp_path, [("wire", url), ("down", "http://127.0.0.1:9/b.xml")])
    result = run_cli("run", "--once", config=config, database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "every source failed" not in result.stdout


def test_verbose_daemon_logs_a_summary_per_cycle_without_scheduler_chatter(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("one", "http://127.0.0.1:9/a.xml"), ("two", "http://127.0.0.1:9/b.xml")])
    log = tmp_path / "daemon.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-v", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")},
        )
        try:
            deadline = time.monotonic() + 180
            while "poll: 2 sources" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(4)  # several one-second scheduler ticks after the first cycle
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    err = log.read_text()
    assert "apscheduler" not in err and "Running job" not in err, err[-2000:]
    summary = [line for line in err.splitlines() if "poll: 2 sources" in line]
    assert len(summary) == 1, err[-3000:]
    assert re.search(r"poll: 2 sources \(0 ok, 2 failed\), 0 new items; next due (one|two) in (9|10)m$", summary[0])
    hint = (
        "every source failed at once: this machine probably has no network or no DNS "
        "(check `wirewatch sources` for the causes)"
    )
    assert any(line.endswith(hint) for line in err.splitlines())
    for name in ("one", "two"):
        assert (
            len(
                [
                    line
                    for line in err.splitlines()
                    if line.endswith(f"source {name}: connection refused (next try in 10m)")
                ]
            )
            == 1
        )


# --------------------------------------------------------------------------- check


def test_check_judges_subscriber_urls_with_apprise_and_warns_of_plain_secrets(tmp_path: Path) -> None:
    extra = """
[[subscribers]]
name = "bad"
urls = ["slack://bad"]

[[subscribers]]
name = "plain"
urls = ["mailtos://user:hunter2@smtp.example.org?to=a@example.org", "mailtos://user:${SMTP_PASSWORD}@smtp.example.org?to=a@example.org"]
"""
    config = write_config(tmp_path, [("wire", "http://127.0.0.1:9/feed.xml")], extra=extra)
    result = cli("check", "--config", str(config))
    assert result.returncode == 2
    err = result.stderr.splitlines()
    assert (
        f"warning: {config}: subscribers 'plain'.urls[0]: a secret is written in the file in plain text; "
        "put it in the environment and write ${NAME} instead"
    ) in err
    assert not any("urls[1]" in line and "plain text" in line for line in err)  # ${NAME}: not a plain-text secret
    assert err[-1] == (
        f"error: {config}: subscribers 'bad'.urls[0]: Apprise cannot use this slack:// URL "
        "(unknown service or missing parts); see https://github.com/caronc/apprise/wiki"
    )
    assert "hunter2" not in result.stdout + result.stderr


# --------------------------------------------------------------------------- invalid config


def test_read_only_commands_work_on_an_invalid_config(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/feed.xml", rss([("1", "Putin speaks", "Путин")]))
    config = write_config(tmp_path, [("wire", url)])
    sqlite = database_url.startswith("sqlite")
    if sqlite:
        database_url = f"sqlite:///{tmp_path / 'w.db'}"  # the config's own [storage] url
    assert run_cli("run", "--once", config=config, database_url=database_url).returncode == 0
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('query = "putin"', 'query = "putin AND ("'), encoding="utf-8")
    assert run_cli("check", config=config).returncode == 2
    warning = f"warning: {config} has 1 error (`wirewatch check` lists them); showing the database only"
    for command in (["sources"], ["items"], ["alerts"], ["stories"], ["items", "--source", "wire"]):
        result = run_cli(*command, config=config, database_url=database_url)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stderr.splitlines() == [warning], (command, result.stderr)
        assert "(none)" not in result.stdout, command
    # Without --database-url: the [storage] url is salvaged from the broken file.
    salvaged = run_cli("items", "--json", config=config)
    if sqlite:
        assert salvaged.returncode == 0, salvaged.stderr
        assert [i["title"] for i in json.loads(salvaged.stdout)["items"]] == ["Putin speaks"]
    else:  # the file names a SQLite database that was never created: said, not created
        assert salvaged.returncode == 3
        assert salvaged.stderr.splitlines()[-1] == f"error: no database at {tmp_path / 'w.db'} (give --database-url)"
        assert not (tmp_path / "w.db").exists()
    # Commands that act still refuse.
    assert run_cli("run", "--once", config=config, database_url=database_url).returncode == 2


# --------------------------------------------------------------------------- source actions


def test_source_actions_poll_reset_enable_disable(tmp_path: Path, database_url: str, feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed.xml", rss([("1", "Weather", "cold")]))
    config = write_config(tmp_path, [("wire", url), ("down", "http://127.0.0.1:9/b.xml")])
    disabled = run_cli("sources", "disable", "wire", config=config, database_url=database_url)
    assert disabled.returncode == 0
    assert disabled.stdout == "source wire: disabled (database override; the config says enabled = true)\n"
    listing = run_cli("sources", config=config, database_url=database_url).stdout.splitlines()
    wire = next(line for line in listing if line.startswith("wire"))
    # Disabled: nothing is due, and the override is shown as such.
    assert re.fullmatch(
        r"wire +disabled +0 +- +- +- +disabled by `wirewatch sources disable` \(database override\)", wire
    )
    doc = json.loads(run_cli("sources", "--json", config=config, database_url=database_url).stdout)
    state = {s["name"]: s for s in doc["sources"]}
    assert state["wire"]["override"] == "disabled" and state["wire"]["enabled"] is False
    assert state["wire"]["next_due"] is None

    # run --once skips it; `sources poll` polls it anyway.
    once = run_cli("run", "--once", config=config, database_url=database_url)
    assert once.stdout.startswith("polled 1 sources (0 ok, 1 failed)")
    assert feed_server.hits("/feed.xml") == []
    poll = run_cli("sources", "poll", "wire", config=config, database_url=database_url)
    assert poll.returncode == 0, poll.stderr
    assert poll.stdout.startswith("polled 1 sources (1 ok, 0 failed): 1 new items")
    assert len(feed_server.hits("/feed.xml")) == 1

    enabled = run_cli("sources", "enable", "wire", config=config, database_url=database_url)
    assert enabled.stdout == "source wire: enabled (as the config says; database override cleared)\n"
    doc = json.loads(run_cli("sources", "--json", config=config, database_url=database_url).stdout)
    assert {s["name"]: s["override"] for s in doc["sources"]}["wire"] is None

    failed_poll = run_cli("sources", "poll", "down", config=config, database_url=database_url)
    assert failed_poll.returncode == 1
    assert failed_poll.stderr.splitlines()[-1].startswith("source down: connection refused (")
    before = {
        s["name"]: s
        for s in json.loads(run_cli("sources", "--json", config=config, database_url=database_url).stdout)["sources"]
    }
    assert before["down"]["consecutive_failures"] == 2
    reset = run_cli("sources", "reset", "down", config=config, database_url=database_url)
    assert reset.returncode == 0
    assert reset.stdout == "source down: 2 failures forgotten; due now (the running daemon polls it within a second)\n"
    after = {
        s["name"]: s
        for s in json.loads(run_cli("sources", "--json", config=config, database_url=database_url).stdout)["sources"]
    }
    assert after["down"]["consecutive_failures"] == 0 and after["down"]["last_error"] is None
    assert run_cli("sources", config=config, database_url=database_url).stdout.count("now") == 1


def test_a_config_disabled_source_enabled_from_the_cli_is_polled(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/feed.xml", rss([("1", "Weather", "cold")]))
    config = write_config(tmp_path, [("wire", url)], enabled=False)
    result = run_cli("sources", "enable", "wire", config=config, database_url=database_url)
    assert result.stdout == "source wire: enabled (database override; the config says enabled = false)\n"
    once = run_cli("run", "--once", config=config, database_url=database_url)
    assert once.stdout.startswith("polled 1 sources (1 ok, 0 failed)"), once.stdout
    line = next(
        x
        for x in run_cli("sources", config=config, database_url=database_url).stdout.splitlines()
        if x.startswith("wire")
    )
    assert "enabled by `wirewatch sources enable` (database override)" in line and " ok " in line


OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0"><head><title>My feeds</title></head><body>
  <outline text="News">
    <outline type="rss" text="Yonhap: North Korea" xmlUrl="https://en.yna.co.kr/RSS/nk.xml"/>
    <outline type="rss" text="Wire" xmlUrl="{known}"/>
    <outline type="rss" title="Yonhap: North Korea" xmlUrl="https://example.org/other.xml"/>
    <outline type="rss" text="Gopher" xmlUrl="gopher://example.org/feed"/>
  </outline>
</body></opml>
"""


def test_opml_import_and_export(tmp_path: Path) -> None:
    known = "http://127.0.0.1:9/feed.xml"
    config = write_config(tmp_path, [("wire", known)])
    opml = tmp_path / "feeds.opml"
    opml.write_text(OPML.format(known=known), encoding="utf-8")
    dry = cli("sources", "import", str(opml), "--dry-run", "--config", str(config))
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith('[[sources]]\n# Yonhap: North Korea\nname = "yonhap-north-korea"\ntype = "feed"\n')
    assert "configured" not in config.read_text(encoding="utf-8") and "yonhap" not in config.read_text(encoding="utf-8")
    result = cli("sources", "import", str(opml), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"skipped {known}: already a source",
        "skipped gopher://example.org/feed: only http(s) feeds can be polled",
    ]
    out = result.stdout.splitlines()
    assert out[0].split() == ["ADDED", "URL"]
    assert out[1].split() == ["yonhap-north-korea", "https://en.yna.co.kr/RSS/nk.xml"]
    assert out[2].split() == ["yonhap-north-korea-2", "https://example.org/other.xml"]
    assert out[3] == f"2 source(s) added to {config}; a running daemon picks them up on its own"
    assert cli("check", "--config", str(config)).stdout.endswith("OK (3 sources, 1 terms, 1 rules, 1 subscribers)\n")
    again = cli("sources", "import", str(opml), "--config", str(config))
    assert again.stdout == "no new feeds in the OPML file\n"

    export = cli("sources", "export", "--config", str(config))
    assert export.returncode == 0
    from lxml import etree

    root = etree.fromstring(export.stdout.encode())
    assert root.get("version") == "2.0"
    assert [(o.get("text"), o.get("xmlUrl")) for o in root.iter("outline")] == [
        ("wire", known),
        ("yonhap-north-korea", "https://en.yna.co.kr/RSS/nk.xml"),
        ("yonhap-north-korea-2", "https://example.org/other.xml"),
    ]
    # Round trip: what we export, a fresh config imports whole.
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh = write_config(fresh_dir, [])
    exported = tmp_path / "out.opml"
    exported.write_text(export.stdout, encoding="utf-8")
    back = cli("sources", "import", str(exported), "--config", str(fresh))
    assert back.returncode == 0 and "3 source(s) added" in back.stdout

    broken = tmp_path / "broken.opml"
    broken.write_text("<opml><body><outline", encoding="utf-8")
    bad = cli("sources", "import", str(broken), "--config", str(config))
    assert bad.returncode == 1 and bad.stderr.startswith("error: not readable OPML")
    missing = cli("sources", "import", str(tmp_path / "nope.opml"), "--config", str(config))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


# --------------------------------------------------------------------------- alerts retry


def test_alerts_retry_of_an_alert_that_is_not_failed_is_an_error(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/feed.xml", rss([("1", "Putin speaks", "Путин")]))
    config = write_config(tmp_path, [("wire", url)])
    run_cli("run", "--once", config=config, database_url=database_url)
    rows = json.loads(run_cli("alerts", "--json", config=config, database_url=database_url).stdout)["alerts"]
    assert len(rows) == 1 and rows[0]["status"] == "pending"
    result = run_cli("alerts", "retry", str(rows[0]["id"]), config=config, database_url=database_url)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for 'ID': only failed or unknown alerts can be retried: #{rows[0]['id']} is pending"
    )
    none = run_cli("alerts", "retry", "--failed", config=config, database_url=database_url)
    assert none.returncode == 0 and none.stdout == "(none) — no failed alerts\n"
    usage = run_cli("alerts", "retry", config=config, database_url=database_url)
    assert usage.returncode == 2
    assert usage.stderr.splitlines()[-1] == (
        "Error: give alert ids (`wirewatch alerts retry 12 13`), or --failed for every failed alert"
    )


# --------------------------------------------------------------------------- demo


@pytest.mark.slow
def test_demo_tells_one_story_and_keeps_its_folder_only_with_keep(tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}
    result = cli("demo", env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("wirewatch demo: 4 sample feeds (en, ar, ru, ko) served on http://127.0.0.1:")
    assert "matched against the " in out and f"rule(s) of {ROOT / 'config.toml'}." in out
    assert "Every alert below is printed as subscriber 'terminal' would receive it; nothing is sent." in out
    assert "─── message 1: [" in out
    assert "\nHeld back, and why:\n" in out
    assert (
        "  • not alerted: Kim Kardashian launches a new skincare line in Seoul (demo-en): "
        "the decoy: a namesake (Kim Kardashian in Seoul), not Kim Jong Un; no rule matched"
    ) in out
    assert "flood control:" in out
    assert "sent" not in result.stderr  # the story is on stdout only
    assert "Kept" not in out and list(tmp_path.glob("wirewatch-demo-*")) == []

    # The operator's own rules, and --keep.
    own = tmp_path / "mine.toml"
    own.write_text(
        '[terms]\nkursk = ["Kursk", "Курск", "كورسك", "쿠르스크"]\n\n'
        '[[rules]]\nname = "only-kursk"\nquery = "kursk"\nnotify = ["nobody-here"]\n',
        encoding="utf-8",
    )
    kept = cli("demo", "--keep", "--config", str(own), env=env, timeout=300)
    assert kept.returncode == 0, kept.stderr
    assert f"matched against the 1 rule(s) of {own}." in kept.stdout
    assert "[only-kursk]" in kept.stdout
    folders = list(tmp_path.glob("wirewatch-demo-*"))
    assert len(folders) == 1
    assert f"\nKept the demo's folder: {folders[0]}\n" in kept.stdout
    assert (folders[0] / "demo.db").exists() and (folders[0] / "config.toml").exists()
