"""The config loader: every problem reported at once, by name and field; secrets kept out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.config import load_config, redact
from monitor.errors import ConfigError
from tests.conftest import ROOT, run_cli

GOOD = """
[storage]
url = "sqlite:///x.db"
keep = "30d"

[fetch]
timeout = "20s"
max_body = "5MB"

[alerts]
max_age = "2d"
first_poll = "alert"
operators = ["ops"]

[[sources]]
name = "wire"
url = "https://example.org/feed.xml"
interval = "5m"
language = "en"

[terms]
putin = ["Putin", "Путин"]
kursk = ["Kursk"]

[[rules]]
name = "putin-kursk"
query = "putin AND kursk"
notify = ["ops"]

[[subscribers]]
name = "ops"
urls = ["json://127.0.0.1:9/hook", "mailtos://me:${SMTP_PASSWORD}@smtp.example.org?to=a@example.org"]
timezone = "Asia/Seoul"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_loads_with_units_parsed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={"SMTP_PASSWORD": "s3cret"})
    assert config.fetch.max_body == 5_000_000
    assert config.fetch.timeout.total_seconds() == 20
    assert config.storage.keep.days == 30
    assert config.source("wire") is not None
    assert config.warnings == ()
    sub = config.subscriber("ops")
    assert sub is not None
    urls, missing = sub.resolve_urls({"SMTP_PASSWORD": "s3cret"})
    assert missing == []
    assert urls[1] == (1, "mailtos://me:s3cret@smtp.example.org?to=a@example.org")
    # The template, not the secret, is what the config object holds.
    assert "s3cret" not in repr(config)


def test_missing_environment_variable_is_a_warning_and_skips_that_url(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={})
    assert len(config.warnings) == 1
    assert "SMTP_PASSWORD" in str(config.warnings[0])
    assert "subscribers[0] 'ops'.urls[1]" in str(config.warnings[0])
    sub = config.subscriber("ops")
    assert sub is not None
    urls, missing = sub.resolve_urls({})
    assert [i for i, _ in urls] == [0]
    assert missing == ["SMTP_PASSWORD"]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    bad = (
        GOOD.replace('timeout = "20s"', 'timeout = "20 parsecs"')
        .replace('interval = "5m"', 'interval = "5m"\nintervall = "6m"')
        .replace('query = "putin AND kursk"', 'query = "putin AND kurskk"')
        .replace('notify = ["ops"]', 'notify = ["opps"]')
        .replace('timezone = "Asia/Seoul"', 'timezone = "Asia/Soul"')
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad), env={})
    text = str(info.value)
    lines = text.splitlines()
    assert len(lines) == 5, text
    assert all(line.startswith(str(tmp_path / "config.toml")) for line in lines)
    assert "fetch.timeout: not a duration" in text
    assert "sources[0] 'wire'.intervall: unknown key, did you mean 'interval'?" in text
    assert "rules[0] 'putin-kursk'.query" in text and "kurskk" in text and "column 11" in text
    assert "rules[0] 'putin-kursk'.notify[0]: unknown subscriber 'opps', did you mean 'ops'?" in text
    assert "subscribers[0] 'ops'.timezone: unknown time zone 'Asia/Soul'" in text


def test_duplicates_types_and_unsafe_urls(tmp_path: Path) -> None:
    bad = GOOD + '\n[[sources]]\nname = "wire"\nurl = "file:///etc/passwd"\nenabled = "yes"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad), env={})
    text = str(info.value)
    assert "duplicate source name 'wire'" in text
    assert "only http(s) URLs can be polled" in text
    assert "sources[1] 'wire'.enabled: expected true or false" in text


def test_invalid_toml_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[storage\nurl = 1"), env={})
    assert "invalid TOML" in str(info.value)


def test_redact_hides_passwords() -> None:
    assert redact("mailtos://user:hunter2@smtp.example.org") == "mailtos://user:***@smtp.example.org"
    assert redact("postgresql://ww:pw@db/ww") == "postgresql://ww:***@db/ww"


def test_check_command_never_prints_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('query = "putin AND kursk"', 'query = "putin AND ("'))
    result = run_cli("check", config=path, env={"SMTP_PASSWORD": "hunter2-secret"})
    assert result.returncode == 2
    assert "hunter2-secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_bundled_config_is_valid() -> None:
    config = load_config(ROOT / "config.toml", env={})
    languages = {s.language for s in config.sources}
    assert {"en", "ar", "ru", "ko"} <= languages
    for term in ("kim_jong_un", "putin", "kursk", "troops"):
        assert term in config.terms
    assert config.rules
    # The bundled rules read as named parts, and every part is used by some rule.
    assert len(config.clauses) >= 20
    assert [w for w in config.warnings if w.where.startswith("clauses.")] == []


def _env_example() -> dict[str, str]:
    pairs = (ln.split("=", 1) for ln in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines())
    return {k.strip(): v.strip() for k, *rest in pairs for v in rest if k.strip() and not k.startswith("#")}


def test_bundled_config_passes_check_with_and_without_its_environment() -> None:
    """``${SMTP_SCHEME:-mailtos}`` takes its default, a whole-URL ``${CHAT_WEBHOOK_URL}`` waits to be set."""
    bare = run_cli("check", config=ROOT / "config.toml")
    assert bare.returncode == 0, bare.stderr
    assert "OK" in bare.stdout and "skipped until set" in bare.stderr
    assert "Apprise cannot use" not in bare.stderr
    example = _env_example()
    assert {"SMTP_HOST", "CHAT_WEBHOOK_URL", "ONCALL_NTFY_TOPIC"} <= set(example)
    full = run_cli("check", config=ROOT / "config.toml", env=example)
    assert full.returncode == 0, full.stderr
    assert "skipped until set" not in full.stderr and "error" not in full.stderr
    for secret in ("change-me", "abcdefghijklmnop"):  # values filled in are never printed
        assert secret not in full.stdout + full.stderr
    broken = run_cli("check", config=ROOT / "config.toml", env={**example, "CHAT_WEBHOOK_URL": "nosuch://x"})
    assert broken.returncode != 0
    assert "subscribers 'chat'.urls[0]: Apprise cannot use" in broken.stderr
    assert "nosuch" in broken.stderr  # the scheme, to say which service


def test_pathological_configs_give_a_clear_error_never_a_traceback(tmp_path: Path) -> None:
    cases = {
        "nested-arrays": "x = " + "[" * 100_000 + "]" * 100_000,
        "nested-tables": "x = " + "{a = " * 5_000 + "1" + "}" * 5_000,
        "deep-but-parses": "[fetch]\nuser_agent = " + "[" * 20 + '"a"' + "]" * 20,
        "deep-query": '[terms]\na = ["a"]\n[[rules]]\nname = "r"\nquery = "' + "(" * 50_000 + "a" + ")" * 50_000 + '"',
        "huge": "# " + "x" * 17_000_000,
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_config(path, env={})
        message = str(info.value)
        assert str(path) in message, name
        assert "nested" in message or "larger than" in message, (name, message)


def test_check_rejects_language_codes_with_a_suggestion(tmp_path: Path) -> None:
    bad = GOOD.replace('language = "en"', 'language = "russian"').replace(
        'notify = ["ops"]', 'notify = ["ops"]\nlanguages = ["ko", "kr", "en-US"]'
    )
    result = run_cli("check", config=write(tmp_path, bad))
    assert result.returncode == 2
    errors = result.stderr.splitlines()
    source = next(e for e in errors if "sources[0] 'wire'.language" in e)
    assert "unknown language 'russian'" in source and "did you mean 'ru' (Russian)?" in source
    kr = next(e for e in errors if "rules[0] 'putin-kursk'.languages[1]" in e)
    assert "did you mean 'ko' (Korean)?" in kr
    assert any("languages[2]" in e and "did you mean 'en'" in e for e in errors)
    assert not any("languages[0]" in e for e in errors)  # "ko" is fine


@pytest.mark.parametrize(("code", "meant"), [("fr", None), ("ua", "uk"), ("Arabic", "ar"), ("rusian", "ru")])
def test_language_suggestions(code: str, meant: str | None) -> None:
    from monitor.core.languages import language_problem

    problem = language_problem(code)
    assert problem is not None and f"unknown language {code!r}" in problem
    assert (f"did you mean {meant!r}" in problem) if meant else ("did you mean" not in problem)


def test_telegram_sources_need_a_valid_channel(tmp_path: Path) -> None:
    good = (
        GOOD
        + '\n[[sources]]\nname = "tg"\ntype = "telegram"\nchannel = "kndr_vesti"\n'
        + '\n[[sources]]\nname = "tg-mirror"\ntype = "telegram"\nchannel = "bukhan_sosik"\nurl = "http://127.0.0.1:8080/s/bukhan_sosik"\n'
    )
    config = load_config(write(tmp_path, good), env={})
    tg, mirror = config.source("tg"), config.source("tg-mirror")
    assert tg is not None and tg.channel == "kndr_vesti" and tg.url == "https://t.me/s/kndr_vesti"
    assert mirror is not None and mirror.url == "http://127.0.0.1:8080/s/bukhan_sosik"
    assert config.source("wire") is not None and config.source("wire").channel is None  # type: ignore[union-attr]
    bad = (
        GOOD.replace('interval = "5m"', 'interval = "5m"\nchannel = "wirechan"')
        + '\n[[sources]]\nname = "a"\ntype = "telegram"\n'
        + '\n[[sources]]\nname = "b"\ntype = "telegram"\nchannel = "abc"\n'
        + '\n[[sources]]\nname = "c"\ntype = "telegram"\nchannel = "@kndr_vesti"\n'
        + '\n[[sources]]\nname = "d"\ntype = "telegram"\nchannel = "kndr-vesti"\n'
        + '\n[[sources]]\nname = "e"\ntype = "telegram"\nchanel = "kndr_vesti"\n'
        + '\n[[sources]]\nname = "f"\ntype = "telgram"\nchannel = "kndr_vesti"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad), env={})
    text = str(info.value)
    assert "sources[0] 'wire'.channel: only a telegram source takes a channel (this one is a feed source)" in text
    assert "sources[1] 'a'.channel: missing" in text
    assert "sources[2] 'b'.channel: 'abc' is not a Telegram channel name: 5-32 letters, digits or '_'" in text
    assert "sources[3] 'c'.channel: write the channel name without '@': 'kndr_vesti'" in text
    assert "sources[4] 'd'.channel: 'kndr-vesti' is not a Telegram channel name" in text
    assert "sources[5] 'e'.chanel: unknown key, did you mean 'channel'?" in text
    assert "sources[5] 'e'.channel: missing" in text
    assert "sources[6] 'f'.type: expected one of" in text and "'telegram'" in text


def test_corroboration_and_surge_keys_are_validated_with_clear_errors(tmp_path: Path) -> None:
    good = GOOD.replace(
        'operators = ["ops"]', 'operators = ["ops"]\ncorroboration_updates = [3, 7]\nsurge = 3\nsurge_cooldown = "2h"'
    ).replace('notify = ["ops"]', 'notify = ["ops"]\nmin_outlets = 3\nmin_languages = 2\nmax_wait = "90m"')
    config = load_config(write(tmp_path, good), env={})
    assert config.alerts.corroboration_updates == (3, 7) and config.alerts.surge == 3.0
    assert config.alerts.surge_min == 10 and config.alerts.surge_cooldown.total_seconds() == 7200
    rule = config.rules[0]
    assert (rule.min_outlets, rule.min_languages, rule.max_wait.total_seconds()) == (3, 2, 5400)
    defaults = load_config(write(tmp_path, GOOD), env={})
    assert defaults.alerts.corroboration_updates == () and defaults.alerts.surge == 0
    assert defaults.rules[0].min_outlets == 0 and defaults.rules[0].max_wait.total_seconds() == 6 * 3600

    bad = GOOD.replace(
        'operators = ["ops"]',
        'operators = ["ops"]\ncorroboration_updates = [7, 3]\nsurge = "lots"\nsurge_min = 0\nsurge_cooldown = "soon"',
    ).replace('notify = ["ops"]', 'notify = ["ops"]\nmin_outlets = 0\nmin_languages = "two"\nmax_wait = 6')
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad), env={})
    text = str(info.value)
    assert len(text.splitlines()) == 7, text
    assert "alerts.corroboration_updates: counts must be increasing with no repeats, got [7, 3]" in text
    assert "alerts.surge: expected a number such as 3.0 (0 turns surges off), got 'lots'" in text
    assert "alerts.surge_min: must be between 1 and 1000000, got 0" in text
    assert "alerts.surge_cooldown: " in text
    assert "rules[0] 'putin-kursk'.min_outlets: must be between 1 and 1000, got 0" in text
    assert "rules[0] 'putin-kursk'.min_languages: expected an integer, got 'two'" in text
    assert "rules[0] 'putin-kursk'.max_wait: expected a duration string such as '5m', got 6" in text

    for alerts_line, message in (
        ("corroboration_updates = [1, 3]", "each count must be 2 or more"),
        ('corroboration_updates = "3"', "expected a list of outlet counts such as [3, 7]"),
        ("surge = 0.5", "must be 0 (off) or between 1 and 1000 times the hourly mean, got 0.5"),
    ):
        with pytest.raises(ConfigError) as info:
            load_config(
                write(tmp_path, GOOD.replace('operators = ["ops"]', f'operators = ["ops"]\n{alerts_line}')), env={}
            )
        assert message in str(info.value)
    lonely = GOOD.replace('notify = ["ops"]', 'notify = ["ops"]\nmax_wait = "1h"')
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, lonely), env={})
    assert "rules[0] 'putin-kursk'.max_wait: max_wait only applies with min_outlets or min_languages" in str(info.value)


def test_fetch_client_is_one_the_poller_has(tmp_path: Path) -> None:
    from crawler.poller import CLIENTS
    from monitor.config import FETCH_CLIENTS

    assert sorted(FETCH_CLIENTS) == sorted(CLIENTS)
    assert load_config(write(tmp_path, GOOD), env={}).fetch.client == "curl"
    aio = GOOD.replace('max_body = "5MB"', 'max_body = "5MB"\nclient = "aiohttp"')
    assert load_config(write(tmp_path, aio), env={}).fetch.client == "aiohttp"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD.replace('max_body = "5MB"', 'max_body = "5MB"\nclient = "pycurl"')), env={})
    assert "fetch.client" in str(info.value) and "curl" in str(info.value)


def test_clauses_are_named_queries_checked_once_where_they_are_written(tmp_path: Path) -> None:
    good = GOOD.replace(
        '[[rules]]\nname = "putin-kursk"\nquery = "putin AND kursk"',
        '[clauses]\nin_kursk = "kursk NEAR/s (putin OR \\"troops\\")"\n\n'
        '[[rules]]\nname = "putin-kursk"\nquery = "putin AND in_kursk"',
    )
    config = load_config(write(tmp_path, good), env={"SMTP_PASSWORD": "x"})
    assert config.clauses == {"in_kursk": 'kursk NEAR/s (putin OR "troops")'}
    assert config.warnings == ()
    extra = 'kursk = "putin"\nspare = "putin"\nloop = "loop"\n'
    bad = good.replace('in_kursk = "kursk NEAR/s', extra + 'in_kursk = "kursks NEAR/s')
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad), env={"SMTP_PASSWORD": "x"})
    lines = str(info.value).splitlines()
    # The typo is reported at the clause, once: not again at the rule that uses it.
    assert [line.split(": ", 1)[1] for line in lines] == [
        "clauses.kursk: 'kursk' is also a term: a name in a query must mean one thing",
        "clauses.loop: clause 'loop' uses itself (loop → loop) at column 1",
        "clauses.in_kursk: unknown term or clause 'kursks' at column 1; did you mean 'kursk'?",
    ], lines


def test_a_clause_no_rule_uses_is_a_warning(tmp_path: Path) -> None:
    text = GOOD.replace("[[rules]]", '[clauses]\nspare = "putin OR kursk"\nused = "kursk"\n\n[[rules]]', 1)
    text = text.replace('query = "putin AND kursk"', 'query = "putin AND used"')
    config = load_config(write(tmp_path, text), env={"SMTP_PASSWORD": "x"})
    assert [str(w).split(": ", 1)[1] for w in config.warnings] == ["clauses.spare: no rule uses this clause"]
    result = run_cli("check", config=write(tmp_path, text), env={"SMTP_PASSWORD": "x"})
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "clauses.spare: no rule uses this clause" in result.stderr
    assert "1 sources, 2 terms, 2 clauses, 1 rules, 1 subscribers" in result.stdout


def test_a_term_no_rule_uses_is_a_warning(tmp_path: Path) -> None:
    # Read through a clause a rule uses counts; read only by an unused clause does not.
    text = GOOD.replace('kursk = ["Kursk"]', 'kursk = ["Kursk"]\nsuja = ["Suja"]\nsumy = ["Sumy"]\nlgov = ["Lgov"]')
    text = text.replace("[[rules]]", '[clauses]\nfront = "kursk OR suja"\nspare = "sumy"\n\n[[rules]]', 1)
    text = text.replace('query = "putin AND kursk"', 'query = "putin AND front"')
    config = load_config(write(tmp_path, text), env={"SMTP_PASSWORD": "x"})
    assert [str(w).split(": ", 1)[1] for w in config.warnings] == [
        "terms.sumy: no rule uses this term",
        "terms.lgov: no rule uses this term",
        "clauses.spare: no rule uses this clause",
    ]


def test_an_alias_that_matches_what_an_earlier_one_matches_is_a_warning(tmp_path: Path) -> None:
    # Case, hyphens, ё/е, Arabic short vowels and a typed apostrophe all normalise away;
    # a wildcard is another alias, and so is a word of its own.
    aliases = [
        "Kim Jong Un",
        "kim jong-un",
        "Kim Jong*",
        "KIM JONG*",
        "передаёт",
        "передает",
        "اتفاقا",
        "اتفاقًا",
        "Russia's army",
        "Russia\u2019s army",
        "Kim",
        "Kim Jong",
    ]
    text = GOOD.replace('kursk = ["Kursk"]', f"kursk = {json.dumps(aliases)}")
    config = load_config(write(tmp_path, text), env={"SMTP_PASSWORD": "x"})
    assert config.terms["kursk"] == tuple(aliases)  # nothing is dropped: the matcher indexes each once
    assert [str(w).split(": ", 1)[1] for w in config.warnings] == [
        "terms.kursk: 'kim jong-un' matches the same words as 'Kim Jong Un' once normalised; drop one",
        "terms.kursk: 'KIM JONG*' matches the same words as 'Kim Jong*' once normalised; drop one",
        "terms.kursk: 'передает' matches the same words as 'передаёт' once normalised; drop one",
        "terms.kursk: 'اتفاقًا' matches the same words as 'اتفاقا' once normalised; drop one",
        "terms.kursk: 'Russia\u2019s army' matches the same words as \"Russia's army\" once normalised; drop one",
    ]
    result = run_cli("check", config=write(tmp_path, text), env={"SMTP_PASSWORD": "x"})
    assert result.returncode == 0, result.stderr
    assert "'передает' matches the same words as 'передаёт'" in result.stderr


def test_the_bundled_terms_have_no_alias_twice() -> None:
    config = load_config(ROOT / "config.toml", env={})
    assert [w for w in config.warnings if "once normalised" in str(w)] == []


def test_a_clause_over_several_lines_is_reported_by_line_and_column(tmp_path: Path) -> None:
    text = GOOD.replace(
        "[[rules]]",
        "[clauses]\nin_kursk = '''\n    kursk\n    AND (putin OR kims)\n'''\n\n[[rules]]",
        1,
    ).replace('query = "putin AND kursk"', 'query = "putin AND in_kursk"')
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"SMTP_PASSWORD": "x"})
    assert str(info.value).endswith(
        "clauses.in_kursk: unknown term or clause 'kims' at line 2, column 19; "
        'to match the word itself, quote it: "kims"'
    ), str(info.value)
    fixed = text.replace("kims", "kursk")
    assert load_config(write(tmp_path, fixed), env={"SMTP_PASSWORD": "x"}).clauses["in_kursk"].split() == [
        "kursk",
        "AND",
        "(putin",
        "OR",
        "kursk)",
    ]
