"""Load and validate ``config.toml`` into frozen dataclasses.

Responsible for turning the operator's file into a :class:`Config` or a
:class:`~monitor.errors.ConfigError` that lists *every* problem (file, the source, rule or
subscriber by name, the field, and for a query the column).  Unknown keys are errors, so a
typo never silently becomes a default.  ``${NAME}`` in subscriber URLs is kept as a
template here and resolved from the environment only when a message is sent, so the
resolved secret never sits in an object that might be printed.  This module must not
touch the database or the network.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.core.languages import language_problem
from monitor.core.rules import alias_key, parse_clause, parse_query, position, query_terms
from monitor.core.units import parse_duration, parse_size
from monitor.errors import ConfigError, ConfigProblem, QueryError

SOURCE_TYPES = ("feed", "sitemap", "listing", "spider", "telegram")
FIRST_POLL = ("silent", "alert")
MODES = ("realtime", "digest")
SEVERITIES = ("normal", "critical")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# A public Telegram username (the ``name`` of https://t.me/name): 5-32 letters, digits, _.
_TELEGRAM_CHANNEL = re.compile(r"^[A-Za-z0-9_]{5,32}$")
TELEGRAM_PREVIEW = "https://t.me/s/{channel}"
_TERM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# ${NAME}, or ${NAME:-default} (the shell's form: the default when NAME is unset or empty).
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_USERINFO = re.compile(r"(?<=://)([^/@:\s]*):([^/@\s]+)@")


def _unset_vars(template: str, env: Mapping[str, str]) -> list[str]:
    """The variables ``template`` needs that ``env`` lacks (one with a default is never lacking)."""
    return [m.group(1) for m in _ENV.finditer(template) if m.group(2) is None and m.group(1) not in env]


def _fill(template: str, env: Mapping[str, str], unset: str) -> str:
    """``template`` with each variable's value, else its default, else ``unset``."""
    return _ENV.sub(lambda m: env.get(m.group(1)) or (m.group(2) if m.group(2) is not None else unset), template)


def _expand(template: str, env: Mapping[str, str]) -> str:
    return _fill(template, env, "")


def expand_for_check(template: str, env: Mapping[str, str], filler: str = "placeholder") -> str | None:
    """``template`` as ``check`` judges it: set variables and defaults filled in, unset ones as ``filler``.

    ``None`` when the whole value is one unset variable (``${CHAT_WEBHOOK_URL}``): there is
    nothing to judge until it is set, and the config already warns that the URL is skipped.
    """
    whole = _ENV.fullmatch(template.strip())
    if whole and whole.group(2) is None and not env.get(whole.group(1)):
        return None
    return _fill(template, env, filler)


@dataclass(frozen=True, slots=True)
class StorageConfig:
    url: str = "sqlite:///wirewatch.db"
    keep: timedelta = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str = ""  # "" = no HTTP server
    processes: int = 1  # processes of `wirewatch run` on PostgreSQL; 0 = one per core


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """The web console (monitor/console) on ``[server] listen``.

    ``token`` is a template like a subscriber URL: ``${NAME}`` is filled from the
    environment only when a login is checked, so the secret never sits in this object.
    An empty token (the default) leaves the console off: nobody could log in.
    """

    token: str = ""
    # Where people reach the console (behind their proxy), e.g. "https://ww.example.org":
    # alerts then link to the story's page there.  Empty: alerts carry no console link.
    url: str = ""

    def story_url(self, story_id: int | None) -> str:
        """The console page of story ``story_id``, or "" when there is no console address."""
        if not self.url or story_id is None:
            return ""
        return f"{self.url.rstrip('/')}/stories/{story_id}"

    def resolve_token(self, env: Mapping[str, str]) -> str:
        """The token with ``${NAME}`` filled in; "" when it is unset or needs a missing variable."""
        if not self.token or _unset_vars(self.token, env):
            return ""
        return _expand(self.token, env)


# A login token shorter than this is refused: it would be guessed.
MIN_TOKEN = 16


FETCH_CLIENTS = ("curl", "aiohttp")  # crawler.poller.CLIENTS, without importing the poller


@dataclass(frozen=True, slots=True)
class FetchConfig:
    user_agent: str = "wirewatch/0.1 (+https://example.org/wirewatch)"
    timeout: timedelta = timedelta(seconds=30)
    max_body: int = 10_000_000
    concurrency: int = 32
    per_host: int = 2
    host_delay: timedelta = timedelta(seconds=1)
    obey_robots: bool = True
    full_text: bool = True
    full_text_max: int = 10  # article pages of one source per enrichment round (Scrapy sources: per poll)
    adaptive: bool = True  # poll sources that publish often more often, quiet ones less
    min_interval: timedelta = timedelta(minutes=1)  # adaptive bounds (a source may override)
    max_interval: timedelta = timedelta(hours=6)
    # Networks the egress policy lets fetches reach although they are private/loopback.
    allow_private: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # The feed poller's HTTP client: libcurl (pycurl's multi interface) or aiohttp.
    client: str = "curl"


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    max_age: timedelta = timedelta(days=3)
    first_poll: str = "silent"
    operators: tuple[str, ...] = ()
    max_attempts: int = 8
    retry_backoff: timedelta = timedelta(minutes=1)
    source_failure_threshold: int = 5  # operators are told when a source fails this many times in a row
    source_failure_after: timedelta = timedelta(hours=3)  # ... or has been failing for this long, whichever is first
    # A leased send is another dispatcher's again after this; renewed while the send is
    # in flight, so it can be short and a killed worker's alerts go out within a minute.
    send_lease: timedelta = timedelta(seconds=30)
    send_timeout: timedelta = timedelta(seconds=20)  # one send to one URL; beyond it the outcome is unknown
    # Corroboration and surges (revision 0012).  An alerted story sends one update per
    # subscriber each time its outlets reach one of these counts (empty: no updates).
    corroboration_updates: tuple[int, ...] = ()
    # A rule surges when its matches in the last hour exceed ``surge`` times its trailing
    # 7-day hourly mean and number at least ``surge_min``; 0 turns surge alerts off.
    surge: float = 0.0
    surge_min: int = 10
    surge_cooldown: timedelta = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    type: str
    url: str
    interval: timedelta = timedelta(minutes=10)
    language: str | None = None
    enabled: bool = True
    links: str | None = None
    spider: str | None = None
    min_interval: timedelta | None = None  # adaptive bounds; [fetch] gives the defaults
    channel: str | None = None  # telegram: the public channel's username
    max_interval: timedelta | None = None


DEFAULT_MAX_WAIT = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: str
    query: str
    notify: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    severity: str = "normal"
    backfill: bool = False
    # Hold this rule's alerts until the story is carried by this many outlets / languages
    # (0: no hold), at most ``max_wait``; then it goes out marked unconfirmed.
    min_outlets: int = 0
    min_languages: int = 0
    max_wait: timedelta = DEFAULT_MAX_WAIT


@dataclass(frozen=True, slots=True)
class SubscriberConfig:
    name: str
    urls: tuple[str, ...]  # templates: ${NAME} not yet resolved
    mode: str = "realtime"
    digest_at: tuple[str, ...] = ("08:00",)
    timezone: str = "UTC"
    max_per_hour: int = 30
    quiet_hours: str = ""

    def resolve_urls(self, env: Mapping[str, str]) -> tuple[list[tuple[int, str]], list[str]]:
        """``(index, url)`` with ``${NAME}`` filled in, and the names of missing variables.

        A URL that needs a missing variable is left out: sending to half a secret helps
        nobody, and the caller records the missing names as the delivery error.
        """
        urls: list[tuple[int, str]] = []
        missing: list[str] = []
        for index, template in enumerate(self.urls):
            absent = _unset_vars(template, env)
            if absent:
                missing.extend(absent)
                continue
            urls.append((index, _expand(template, env)))
        return urls, missing


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    storage: StorageConfig = field(default_factory=StorageConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    sources: tuple[SourceConfig, ...] = ()
    terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Named queries that rules use by name as they use terms (``[clauses]``).
    clauses: Mapping[str, str] = field(default_factory=dict)
    rules: tuple[RuleConfig, ...] = ()
    subscribers: tuple[SubscriberConfig, ...] = ()
    warnings: tuple[ConfigProblem, ...] = ()

    # Lookups by name run several times per source per poll: a scan would make a cycle
    # quadratic in the number of sources (measured: 2.6 s of a 10,000-feed warm poll).
    _sources_by_name: Mapping[str, SourceConfig] = field(init=False, repr=False, compare=False)
    _subscribers_by_name: Mapping[str, SubscriberConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sources_by_name", {s.name: s for s in self.sources})
        object.__setattr__(self, "_subscribers_by_name", {s.name: s for s in self.subscribers})

    def source(self, name: str) -> SourceConfig | None:
        return self._sources_by_name.get(name)

    def subscriber(self, name: str) -> SubscriberConfig | None:
        return self._subscribers_by_name.get(name)


_SECRET_KEY = re.compile(r"token|key|secret|pass|pwd|auth|sig|hook|access|cred", re.IGNORECASE)
_URL_PART = re.compile(r"[/?&=#@:,\s]+")
_QUOTES = "\"' \t\r\n"


def subscriber_secrets(config: Config, env: Mapping[str, str]) -> set[str]:
    """Every string of the subscribers' resolved URLs that must never be logged.

    The whole resolved URL (as written and with quotes left from an env file stripped),
    every value substituted from the environment, every password, the values of
    secret-looking query keys, and token-like URL parts (16+ characters mixing letters
    and digits: Telegram, Discord and Slack carry their tokens in the path).
    """
    out: set[str] = set()
    for sub in config.subscribers:
        for template in sub.urls:
            for name in (m.group(1) for m in _ENV.finditer(template)):
                if name in env:
                    out.update({env[name], env[name].strip(_QUOTES)})
        resolved, _missing = sub.resolve_urls(env)
        for _index, url in resolved:
            out.update({url, url.strip(_QUOTES)})
            bare = url.strip(_QUOTES)
            rest = bare.split("://", 1)[1] if "://" in bare else bare
            m = _USERINFO.search("x://" + rest)
            if m:
                out.add(m.group(2))
            query = rest.split("?", 1)[1] if "?" in rest else ""
            for pair in query.split("&"):
                key, _, value = pair.partition("=")
                if value and _SECRET_KEY.search(key):
                    out.add(value)
            for part in _URL_PART.split(rest):
                if len(part) >= 16 and re.search(r"\d", part) and re.search(r"[A-Za-z]", part):
                    out.add(part)
    return {s for s in out if s}


def redact(text: str) -> str:
    """Hide the password part of any ``scheme://user:password@`` in ``text``."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}:***@", text)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file; raise :class:`ConfigError` listing every problem."""
    file = str(path)
    try:
        with Path(path).open("rb") as f:
            # Read one byte more than allowed: enough to know it is too big, never more.
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "file", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            [ConfigProblem(file, "file", f"larger than {MAX_CONFIG_BYTES // 1_000_000} MB; is this the right file?")]
        )
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "file", f"not UTF-8 (byte {exc.start})")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "file", f"invalid TOML: {exc}")]) from None
    except RecursionError:
        # tomllib recurses per nested array or inline table.
        raise ConfigError([ConfigProblem(file, "file", _TOO_DEEP)]) from None
    where = _too_deep(data)
    if where is not None:
        raise ConfigError([ConfigProblem(file, where, _TOO_DEEP)])
    try:
        return parse_config(data, file, os.environ if env is None else env)
    except RecursionError:
        # A value that parses as TOML but not as what it stands for (a query of
        # thousands of nested parentheses): still the operator's edit, not a crash.
        raise ConfigError([ConfigProblem(file, "file", "a value is nested too deeply to be read")]) from None


# A config of 10,000 rules and their terms is about 2 MB; anything far bigger is a mistake.
MAX_CONFIG_BYTES = 16_000_000
# The deepest a valid config goes is 3 ([[rules]] → table → list of strings).
MAX_CONFIG_DEPTH = 8
_TOO_DEEP = f"nested more than {MAX_CONFIG_DEPTH} levels deep (arrays or tables); no valid setting is"


def _too_deep(data: Any) -> str | None:
    """The dotted path of the first value nested deeper than MAX_CONFIG_DEPTH, or ``None``.

    Iterative, so the check itself cannot overflow the stack.
    """
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            return where or "file"
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def parse_config(data: Mapping[str, Any], file: str, env: Mapping[str, str]) -> Config:
    """Validate an already-parsed TOML document."""
    v = _Validator(file)
    v.keys(
        "top level",
        data,
        {"storage", "server", "console", "fetch", "alerts", "sources", "terms", "clauses", "rules", "subscribers"},
    )

    storage = _storage(v, v.table("storage", data.get("storage")))
    server = _server(v, v.table("server", data.get("server")))
    console = _console(v, v.table("console", data.get("console")), env)
    fetch = _fetch(v, v.table("fetch", data.get("fetch")))
    alerts = _alerts(v, v.table("alerts", data.get("alerts")))
    sources = _sources(v, data.get("sources", []))
    terms = _terms(v, v.table("terms", data.get("terms")))
    clauses = _clauses(v, v.table("clauses", data.get("clauses")), terms)
    subscribers = _subscribers(v, data.get("subscribers", []), env)
    used: set[str] = set()  # the clauses and terms the rules use, filled in by _rules' own parse
    rules = _rules(
        v, data.get("rules", []), terms, clauses, used, {s.name for s in sources}, {s.name for s in subscribers}
    )
    for name in terms:
        if name not in used:
            v.warn(f"terms.{name}", "no rule uses this term")
    for name in clauses:
        if name not in used and name not in terms:
            v.warn(f"clauses.{name}", "no rule uses this clause")

    sub_names = {s.name for s in subscribers}
    for i, op in enumerate(alerts.operators):
        if op not in sub_names:
            v.error(f"alerts.operators[{i}]", f"unknown subscriber {op!r}{_did_you_mean(op, sub_names)}")

    if v.problems:
        raise ConfigError(v.problems)
    return Config(
        path=file,
        storage=storage,
        server=server,
        console=console,
        fetch=fetch,
        alerts=alerts,
        sources=tuple(sources),
        terms=terms,
        clauses=clauses,
        rules=tuple(rules),
        subscribers=tuple(subscribers),
        warnings=tuple(v.warnings),
    )


# --------------------------------------------------------------------------- sections


def _storage(v: _Validator, t: Mapping[str, Any]) -> StorageConfig:
    v.keys("storage", t, {"url", "keep"})
    d = StorageConfig()
    return StorageConfig(
        url=v.string("storage.url", t.get("url", d.url)),
        keep=v.duration("storage.keep", t.get("keep"), d.keep),
    )


def _server(v: _Validator, t: Mapping[str, Any]) -> ServerConfig:
    v.keys("server", t, {"listen", "processes"})
    listen = v.string("server.listen", t.get("listen", ""), allow_empty=True)
    if listen and not re.match(r"^[^\s:]+:\d{1,5}$", listen):
        v.error("server.listen", f"expected HOST:PORT, got {listen!r}")
    processes = v.integer("server.processes", t.get("processes", 1), 0, 256)
    return ServerConfig(listen=listen, processes=processes)


def _console(v: _Validator, t: Mapping[str, Any], env: Mapping[str, str]) -> ConsoleConfig:
    v.keys("console", t, {"token", "url"})
    token = v.string("console.token", t.get("token", ""), allow_empty=True)
    url = v.string("console.url", t.get("url", ""), allow_empty=True)
    if url and urlsplit(url).scheme not in ("http", "https"):
        v.error("console.url", f"expected an http(s) address such as https://ww.example.org, got {url!r}")
        url = ""
    console = ConsoleConfig(token=token, url=url)
    absent = sorted(set(_unset_vars(token, env)))
    if absent:
        v.warn("console.token", f"environment variable {', '.join(absent)} not set; the console is off until set")
    else:
        resolved = console.resolve_token(env)
        if resolved and len(resolved) < MIN_TOKEN:
            # The length only: the value itself is never put in a message.
            v.error("console.token", f"too short ({len(resolved)} characters); use at least {MIN_TOKEN}")
    return console


def console_secrets(config: Config, env: Mapping[str, str]) -> set[str]:
    """The console's login token, to be masked in every log line."""
    token = config.console.resolve_token(env)
    return {token, token.strip(_QUOTES)} - {""}


def _fetch(v: _Validator, t: Mapping[str, Any]) -> FetchConfig:
    v.keys(
        "fetch",
        t,
        {
            "user_agent",
            "timeout",
            "max_body",
            "concurrency",
            "per_host",
            "host_delay",
            "obey_robots",
            "full_text",
            "full_text_max",
            "adaptive",
            "min_interval",
            "max_interval",
            "allow_private",
            "client",
        },
    )
    d = FetchConfig()
    return FetchConfig(
        user_agent=v.string("fetch.user_agent", t.get("user_agent", d.user_agent)),
        timeout=v.duration("fetch.timeout", t.get("timeout"), d.timeout),
        max_body=v.size("fetch.max_body", t.get("max_body"), d.max_body),
        concurrency=v.integer("fetch.concurrency", t.get("concurrency", d.concurrency), 1, 1024),
        per_host=v.integer("fetch.per_host", t.get("per_host", d.per_host), 1, 64),
        host_delay=v.duration("fetch.host_delay", t.get("host_delay"), d.host_delay, allow_zero=True),
        obey_robots=v.boolean("fetch.obey_robots", t.get("obey_robots", d.obey_robots)),
        full_text=v.boolean("fetch.full_text", t.get("full_text", d.full_text)),
        full_text_max=v.integer("fetch.full_text_max", t.get("full_text_max", d.full_text_max), 0, 1000),
        adaptive=v.boolean("fetch.adaptive", t.get("adaptive", d.adaptive)),
        min_interval=v.duration("fetch.min_interval", t.get("min_interval"), d.min_interval),
        max_interval=v.duration("fetch.max_interval", t.get("max_interval"), d.max_interval),
        allow_private=_networks(v, "fetch.allow_private", t.get("allow_private", [])),
        client=v.choice("fetch.client", t.get("client", d.client), FETCH_CLIENTS),
    )


def _networks(v: _Validator, where: str, value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    out = []
    for i, text in enumerate(v.strings(where, value)):
        try:
            # strict: "10.1.2.3/24" is almost always a typo for a network; say so.
            out.append(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError as exc:
            v.error(f"{where}[{i}]", f"not an IP network such as '10.1.2.0/24': {exc}")
    return tuple(out)


def _alerts(v: _Validator, t: Mapping[str, Any]) -> AlertsConfig:
    v.keys(
        "alerts",
        t,
        {
            "max_age",
            "first_poll",
            "operators",
            "max_attempts",
            "retry_backoff",
            "source_failure_threshold",
            "source_failure_after",
            "send_lease",
            "send_timeout",
            "corroboration_updates",
            "surge",
            "surge_min",
            "surge_cooldown",
        },
    )
    d = AlertsConfig()
    updates = t.get("corroboration_updates", [])
    thresholds: tuple[int, ...] = ()
    if not isinstance(updates, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in updates):
        v.error("alerts.corroboration_updates", f"expected a list of outlet counts such as [3, 7], got {updates!r}")
    elif any(n < 2 for n in updates):
        v.error("alerts.corroboration_updates", f"each count must be 2 or more (an alert already has 1), got {updates}")
    elif list(updates) != sorted(set(updates)):
        v.error("alerts.corroboration_updates", f"counts must be increasing with no repeats, got {updates}")
    else:
        thresholds = tuple(updates)
    surge = t.get("surge", d.surge)
    if isinstance(surge, bool) or not isinstance(surge, int | float):
        v.error("alerts.surge", f"expected a number such as 3.0 (0 turns surges off), got {surge!r}")
        surge = d.surge
    elif surge != 0 and not 1 <= surge <= 1000:
        v.error("alerts.surge", f"must be 0 (off) or between 1 and 1000 times the hourly mean, got {surge}")
    return AlertsConfig(
        max_age=v.duration("alerts.max_age", t.get("max_age"), d.max_age),
        first_poll=v.choice("alerts.first_poll", t.get("first_poll", d.first_poll), FIRST_POLL),
        operators=v.strings("alerts.operators", t.get("operators", [])),
        max_attempts=v.integer("alerts.max_attempts", t.get("max_attempts", d.max_attempts), 1, 100),
        retry_backoff=v.duration("alerts.retry_backoff", t.get("retry_backoff"), d.retry_backoff),
        source_failure_threshold=v.integer(
            "alerts.source_failure_threshold", t.get("source_failure_threshold", d.source_failure_threshold), 1, 1000
        ),
        source_failure_after=v.duration(
            "alerts.source_failure_after", t.get("source_failure_after"), d.source_failure_after
        ),
        send_lease=v.duration("alerts.send_lease", t.get("send_lease"), d.send_lease),
        send_timeout=v.duration("alerts.send_timeout", t.get("send_timeout"), d.send_timeout),
        corroboration_updates=thresholds,
        surge=float(surge),
        surge_min=v.integer("alerts.surge_min", t.get("surge_min", d.surge_min), 1, 1_000_000),
        surge_cooldown=v.duration("alerts.surge_cooldown", t.get("surge_cooldown"), d.surge_cooldown),
    )


def _sources(v: _Validator, items: Any) -> list[SourceConfig]:
    out: list[SourceConfig] = []
    seen: set[str] = set()
    for i, t in enumerate(v.array("sources", items)):
        name = t.get("name")
        where = f"sources[{i}]" + (f" {name!r}" if isinstance(name, str) else "")
        v.keys(
            where,
            t,
            {
                "name",
                "type",
                "url",
                "interval",
                "language",
                "enabled",
                "links",
                "spider",
                "min_interval",
                "max_interval",
                "channel",
            },
        )
        name = v.name(f"{where}.name", name)
        if name in seen:
            v.error(f"{where}.name", f"duplicate source name {name!r}")
        seen.add(name)
        kind = v.choice(f"{where}.type", t.get("type", "feed"), SOURCE_TYPES)
        channel = _channel(v, where, kind, t.get("channel"))
        if kind == "telegram" and t.get("url") is None:
            # The public web preview; ``url`` overrides it (a mirror, a test server).
            url = TELEGRAM_PREVIEW.format(channel=channel) if channel else ""
        else:
            url = v.string(f"{where}.url", t.get("url"))
        if url and not re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
            v.error(f"{where}.url", f"only http(s) URLs can be polled, got {url!r}")
        links = t.get("links")
        spider = t.get("spider")
        if kind == "listing" and not links:
            v.error(f"{where}.links", "a listing source needs a CSS selector for its article links")
        if kind == "spider" and not spider:
            v.error(f"{where}.spider", "a spider source needs the name of a spider in crawler/spiders")
        language = t.get("language")
        out.append(
            SourceConfig(
                name=name,
                type=kind,
                url=url,
                interval=v.duration(f"{where}.interval", t.get("interval"), timedelta(minutes=10)),
                language=v.language(f"{where}.language", language) if language is not None else None,
                enabled=v.boolean(f"{where}.enabled", t.get("enabled", True)),
                links=v.string(f"{where}.links", links) if links is not None else None,
                spider=v.string(f"{where}.spider", spider) if spider is not None else None,
                min_interval=v.duration(f"{where}.min_interval", t.get("min_interval"), timedelta(0))
                if t.get("min_interval") is not None
                else None,
                max_interval=v.duration(f"{where}.max_interval", t.get("max_interval"), timedelta(0))
                if t.get("max_interval") is not None
                else None,
                channel=channel,
            )
        )
    return out


def _channel(v: _Validator, where: str, kind: str, value: Any) -> str | None:
    """The ``channel`` of a telegram source (required, a valid username); no other type takes one."""
    if kind != "telegram":
        if value is not None:
            v.error(f"{where}.channel", f"only a telegram source takes a channel (this one is a {kind} source)")
        return None
    channel = v.string(f"{where}.channel", value)
    if not channel:
        return None
    if channel.startswith("@"):
        v.error(f"{where}.channel", f"write the channel name without '@': {channel[1:]!r}")
        return None
    if not _TELEGRAM_CHANNEL.match(channel):
        v.error(
            f"{where}.channel",
            f"{channel!r} is not a Telegram channel name: 5-32 letters, digits or '_' (the name in https://t.me/name)",
        )
        return None
    return channel


def _query_name(v: _Validator, where: str, name: str, kind: str) -> None:
    """A term's or clause's name: queries use it bare."""
    if not _TERM.match(name):
        v.error(where, f"a {kind} name is letters, digits and _ (it is used bare in queries)")
    if name in ("AND", "OR", "NOT", "NEAR"):
        v.error(where, f"{name!r} is an operator and cannot be a {kind} name")


def _terms(v: _Validator, t: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, aliases in t.items():
        where = f"terms.{name}"
        _query_name(v, where, name, "term")
        values = v.strings(where, aliases)
        if not any(a.strip() for a in values):
            v.error(where, "a term needs at least one non-empty alias")
        out[name] = tuple(a for a in values if a.strip())
        first: dict[tuple[tuple[str, ...], bool], int] = {}
        for i, alias in enumerate(out[name]):
            j = first.setdefault(alias_key(alias), i)
            if j != i:
                v.warn(where, f"{alias!r} matches the same words as {out[name][j]!r} once normalised; drop one")
    return out


def _clauses(v: _Validator, t: Mapping[str, Any], terms: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """``[clauses]``: name = query.  Each is checked on its own, so a mistake is reported once, here."""
    out: dict[str, str] = {}
    for name, text in t.items():
        where = f"clauses.{name}"
        _query_name(v, where, name, "clause")
        if name in terms:
            v.error(where, f"{name!r} is also a term: a name in a query must mean one thing")
        query = v.string(where, text)
        if query:
            out[name] = query
    for name in out:
        if name in terms:
            continue
        try:
            parse_clause(name, terms, out)
        except QueryError as exc:
            v.error(f"clauses.{name}", _query_problem(exc))
    return out


def _query_problem(exc: QueryError) -> str:
    return f"{exc.message} at {position(exc.query, exc.column)}" + (f"; {exc.suggestion}" if exc.suggestion else "")


def _rules(
    v: _Validator,
    items: Any,
    terms: Mapping[str, tuple[str, ...]],
    clauses: Mapping[str, str],
    used: set[str],
    sources: set[str],
    subscribers: set[str],
) -> list[RuleConfig]:
    """The rules; ``used`` gains every clause and term a valid rule uses, directly or through a clause."""
    out: list[RuleConfig] = []
    seen: set[str] = set()
    for i, t in enumerate(v.array("rules", items)):
        name = t.get("name")
        where = f"rules[{i}]" + (f" {name!r}" if isinstance(name, str) else "")
        v.keys(
            where,
            t,
            {
                "name",
                "query",
                "notify",
                "languages",
                "sources",
                "severity",
                "backfill",
                "min_outlets",
                "min_languages",
                "max_wait",
            },
        )
        name = v.name(f"{where}.name", name)
        if name in seen:
            v.error(f"{where}.name", f"duplicate rule name {name!r}")
        seen.add(name)
        query = v.string(f"{where}.query", t.get("query"))
        if query:
            try:
                parsed = parse_query(query, terms, clauses)
                used.update(name for name, _ in parsed.clauses)
                used.update(query_terms(parsed))
            except QueryError as exc:
                # A mistake inside a clause is reported once, at the clause.
                if exc.clause is None:
                    v.error(f"{where}.query", _query_problem(exc))
        notify = v.strings(f"{where}.notify", t.get("notify", []))
        for j, sub in enumerate(notify):
            if sub not in subscribers:
                v.error(f"{where}.notify[{j}]", f"unknown subscriber {sub!r}{_did_you_mean(sub, subscribers)}")
        rule_sources = v.strings(f"{where}.sources", t.get("sources", []))
        for j, src in enumerate(rule_sources):
            if src not in sources:
                v.error(f"{where}.sources[{j}]", f"unknown source {src!r}{_did_you_mean(src, sources)}")
        out.append(
            RuleConfig(
                name=name,
                query=query,
                notify=notify,
                languages=tuple(
                    v.language(f"{where}.languages[{j}]", code)
                    for j, code in enumerate(v.strings(f"{where}.languages", t.get("languages", [])))
                ),
                sources=rule_sources,
                severity=v.choice(f"{where}.severity", t.get("severity", "normal"), SEVERITIES),
                backfill=v.boolean(f"{where}.backfill", t.get("backfill", False)),
                **_corroboration(v, where, t),
            )
        )
    return out


def _corroboration(v: _Validator, where: str, t: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's ``min_outlets``, ``min_languages`` and ``max_wait``."""
    out: dict[str, Any] = {}
    for key, high in (("min_outlets", 1000), ("min_languages", 50)):
        if key in t:
            out[key] = v.integer(f"{where}.{key}", t[key], 1, high)
    if "max_wait" in t:
        if not out:
            v.error(f"{where}.max_wait", "max_wait only applies with min_outlets or min_languages")
        out["max_wait"] = v.duration(f"{where}.max_wait", t["max_wait"], DEFAULT_MAX_WAIT)
    return out


def _subscribers(v: _Validator, items: Any, env: Mapping[str, str]) -> list[SubscriberConfig]:
    out: list[SubscriberConfig] = []
    seen: set[str] = set()
    for i, t in enumerate(v.array("subscribers", items)):
        name = t.get("name")
        where = f"subscribers[{i}]" + (f" {name!r}" if isinstance(name, str) else "")
        v.keys(where, t, {"name", "urls", "mode", "digest_at", "timezone", "max_per_hour", "quiet_hours"})
        name = v.name(f"{where}.name", name)
        if name in seen:
            v.error(f"{where}.name", f"duplicate subscriber name {name!r}")
        seen.add(name)
        urls = v.strings(f"{where}.urls", t.get("urls"))
        if not urls:
            v.error(f"{where}.urls", "a subscriber needs at least one Apprise URL")
        for j, url in enumerate(urls):
            if not re.match(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}|[a-z][a-z0-9+.-]*://)", url):
                v.error(f"{where}.urls[{j}]", f"not an Apprise URL: {redact(url)!r}")
            absent = sorted(set(_unset_vars(url, env)))
            if absent:
                names = ", ".join(absent)
                v.warn(
                    f"{where}.urls[{j}]",
                    f"environment variable{'s' if len(absent) > 1 else ''} {names} not set; "
                    "this URL is skipped until set",
                )
        digest_at = v.strings(f"{where}.digest_at", t.get("digest_at", ["08:00"]))
        for j, hhmm in enumerate(digest_at):
            if not _HHMM.match(hhmm):
                v.error(f"{where}.digest_at[{j}]", f"expected HH:MM, got {hhmm!r}")
        tz = v.string(f"{where}.timezone", t.get("timezone", "UTC"))
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            v.error(f"{where}.timezone", f"unknown time zone {tz!r} (use an IANA name such as 'Asia/Seoul')")
        quiet = v.string(f"{where}.quiet_hours", t.get("quiet_hours", ""), allow_empty=True)
        if quiet and not re.match(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$", quiet):
            v.error(f"{where}.quiet_hours", f'expected HH:MM-HH:MM or "", got {quiet!r}')
        out.append(
            SubscriberConfig(
                name=name,
                urls=urls,
                mode=v.choice(f"{where}.mode", t.get("mode", "realtime"), MODES),
                digest_at=digest_at,
                timezone=tz,
                max_per_hour=v.integer(f"{where}.max_per_hour", t.get("max_per_hour", 30), 1, 100_000),
                quiet_hours=quiet,
            )
        )
    return out


# --------------------------------------------------------------------------- helpers


def _did_you_mean(word: str, choices: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f", did you mean {close[0]!r}?" if close else ""


class _Validator:
    """Collects problems instead of stopping at the first; returns usable placeholders."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def error(self, where: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, where, message))

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(ConfigProblem(self.file, where, message))

    def keys(self, where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                self.error(
                    f"{where}.{key}" if where != "top level" else key, f"unknown key{_did_you_mean(key, allowed)}"
                )

    def table(self, where: str, value: Any) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(where, f"expected a table [{where}], got {type(value).__name__}")
            return {}
        return value

    def array(self, where: str, value: Any) -> list[Mapping[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            self.error(where, f"expected [[{where}]] tables")
            return []
        return value

    def string(self, where: str, value: Any, *, allow_empty: bool = False) -> str:
        if not isinstance(value, str):
            self.error(where, "missing" if value is None else f"expected a string, got {type(value).__name__}")
            return ""
        if not value.strip() and not allow_empty:
            self.error(where, "must not be empty")
        return value

    def name(self, where: str, value: Any) -> str:
        text = self.string(where, value)
        if text and not _NAME.match(text):
            self.error(where, f"{text!r}: use letters, digits, '-', '_' or '.' (at most 64)")
        return text

    def language(self, where: str, value: Any) -> str:
        code = self.string(where, value)
        problem = language_problem(code) if code else None
        if problem:
            self.error(where, problem)
        return code

    def strings(self, where: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.error(where, "expected a list of strings")
            return ()
        return tuple(value)

    def boolean(self, where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.error(where, f"expected true or false, got {value!r}")
            return False
        return value

    def integer(self, where: str, value: Any, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(where, f"expected an integer, got {value!r}")
            return low
        if not low <= value <= high:
            self.error(where, f"must be between {low} and {high}, got {value}")
        return value

    def choice(self, where: str, value: Any, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.error(where, f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
            return choices[0]
        return str(value)

    def duration(self, where: str, value: Any, default: timedelta, *, allow_zero: bool = False) -> timedelta:
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(where, f"expected a duration string such as '5m', got {value!r}")
            return default
        try:
            delta = parse_duration(value)
        except ValueError as exc:
            self.error(where, str(exc))
            return default
        if delta <= timedelta(0) and not allow_zero:
            self.error(where, "must be longer than zero")
        return delta

    def size(self, where: str, value: Any, default: int) -> int:
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(where, f"expected a size string such as '10MB', got {value!r}")
            return default
        try:
            return parse_size(value)
        except ValueError as exc:
            self.error(where, str(exc))
            return default
