"""Server-side request forgery: a public feed must not make wirewatch fetch internal addresses.

The probe of issue 18: item links and redirects that point at another loopback address
or port (127.0.0.2 plays the cloud metadata service and an admin panel), fetched for full
text with robots.txt on.  Through the real ``wirewatch run --once``, the internal
servers must see no request at all, every item must still be stored, the refusals are
recorded with their reason (on the item, by the enrichment stage), and no alert
carries the internal pages' text.  The feed itself is served on 127.0.0.1 and reached
through the same-host-and-port rule, and an operator's ``allow_private`` opens exactly
what it names: the policy is tested, not switched off.
"""

from __future__ import annotations

import ipaddress
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from crawler.egress import EgressPolicy
from tests.conftest import run_cli
from tests.servers import FeedServer, Route, WebhookReceiver
from tests.sources.helpers import sources_json, stored

SECRET = "api_key=AKIA-internal-7731"
ARTICLE = "<html><body><article>" + "<p>Troops were seen near Kursk today, officials said.</p>" * 20
INTERNAL_PAGE = f"<html><body><article><p>Kursk {SECRET} admin console</p>" * 30 + "</article></body></html>"


def _redirect(to: str) -> Route:
    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", to)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return Route(handler=handler)


def _feed(links: list[str]) -> str:
    entries = "".join(
        f"<item><guid>e{i}</guid><title>Kursk report {i}</title><link>{link}</link></item>"
        for i, link in enumerate(links)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>{entries}</channel></rss>'


def _internal(server: FeedServer) -> None:
    for path in ("/latest/meta-data/", "/admin", "/feed.xml"):
        server.serve(path, INTERNAL_PAGE, content_type="text/html")
    server.serve("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")


def _config(tmp_path: Path, sources: dict[str, str], hook: str, fetch: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[fetch]\nhost_delay = "0s"\nfull_text = true\nobey_robots = true\ntimeout = "10s"\n{fetch}\n'
        '[alerts]\nfirst_poll = "alert"\n'
        + "".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n' for n, u in sources.items())
        + '[terms]\nkursk = ["Kursk"]\n[[rules]]\nname = "kursk"\nquery = "kursk"\nnotify = ["chat"]\n'
        + f'[[subscribers]]\nname = "chat"\nurls = ["{hook}"]\n',
        encoding="utf-8",
    )
    return path


def test_item_links_and_redirects_never_reach_internal_addresses(
    tmp_path: Path, database_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    metadata = FeedServer("127.0.0.2")  # another loopback address: the metadata service
    admin = FeedServer()  # the same address as the feed, another port: an admin panel
    try:
        _internal(metadata)
        _internal(admin)
        public = feed_server
        public.serve("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        public.serve("/article", ARTICLE, content_type="text/html")
        public.routes["/hop"] = _redirect(metadata.base + "/latest/meta-data/")
        public.routes["/feed-moved.xml"] = _redirect(metadata.base + "/feed.xml")
        links = [
            metadata.base + "/latest/meta-data/",
            admin.base + "/admin",
            f"http://localhost:{admin.port}/admin",  # a name that resolves to loopback
            public.base + "/hop",  # same origin, then a redirect inside
            f"http://[::ffff:127.0.0.2]:{metadata.port}/admin",  # IPv4-mapped IPv6
            public.base + "/article",  # the one page this source may fetch
        ]
        public.serve("/feed.xml", _feed(links))
        config = _config(
            tmp_path, {"wire": public.base + "/feed.xml", "moved": public.base + "/feed-moved.xml"}, webhook.url()
        )
        result = run_cli("run", "--once", config=config, database_url=database_url, timeout=180)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr

        # Internal requests made: none, robots.txt included.
        assert metadata.requests == []
        assert admin.requests == []
        # Items lost: none.  The allowed page was fetched for full text.
        items = stored(database_url, "wire")
        assert len(items) == len(links)
        health = sources_json(config, database_url)
        assert health["wire"]["status"] == "ok"
        # Each refused article page is recorded on its item (enrichment), final at once.
        by_url = {i["url"]: i for i in items}
        for link in links[:5]:
            assert by_url[link]["text_state"] == "failed", by_url[link]
        refused = by_url[links[0]]["text_error"] or ""
        assert "egress policy" in refused and "loopback" in refused, refused
        assert by_url[public.base + "/article"]["text_state"] == "done"
        # The redirected feed fails with the refusal as its reason; the other source is untouched.
        assert health["moved"]["status"] == "failing"
        assert "egress policy" in (health["moved"]["last_error"] or "")
        assert public.hits("/article")
        # Alerts carry nothing from the internal pages.
        everything = json.dumps(webhook.posts) + result.stderr + json.dumps(items, default=str)
        assert SECRET not in everything
        assert webhook.posts
    finally:
        metadata.close()
        admin.close()


def test_allow_private_opens_exactly_what_it_names(tmp_path: Path, feed_server: FeedServer) -> None:
    metadata = FeedServer("127.0.0.2")
    admin = FeedServer()
    try:
        _internal(metadata)
        _internal(admin)
        feed_server.serve("/feed.xml", _feed([metadata.base + "/admin", admin.base + "/admin"]))
        hook = "json://127.0.0.1:9/none"
        config = _config(tmp_path, {"wire": feed_server.base + "/feed.xml"}, hook, 'allow_private = ["127.0.0.2/32"]')
        db = f"sqlite:///{tmp_path / 'allow.db'}"
        result = run_cli("run", "--once", config=config, database_url=db, timeout=180)
        assert result.returncode == 0, result.stderr
        assert [p for p, _ in metadata.requests if p != "/robots.txt"] == ["/admin"]
        assert admin.requests == []  # 127.0.0.1 on another port is still refused
    finally:
        metadata.close()
        admin.close()


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
    ],
)
def test_non_public_addresses_are_refused_by_default(ip: str, kind: str) -> None:
    reason = EgressPolicy().refusal(ip, 80)
    assert reason is not None and kind in reason


def test_public_addresses_pass_and_allowlists_and_own_origin_open_only_themselves() -> None:
    policy = EgressPolicy()
    assert policy.refusal("93.184.216.34", 443) is None
    assert policy.refusal("2606:4700::1111", 443) is None
    opened = EgressPolicy(allow_private=(ipaddress.ip_network("10.1.2.0/24"),))
    assert opened.refusal("10.1.2.9", 8080) is None
    assert opened.refusal("::ffff:10.1.2.9", 8080) is None
    assert opened.refusal("10.1.3.9", 8080) is not None
    # A source at a private address may reach that host and port only.
    own = "http://10.9.9.9:8080/feed.xml"
    assert policy.refusal("10.9.9.9", 8080, source_url=own) is None
    assert policy.refusal("10.9.9.9", 8081, source_url=own) is not None
    assert policy.refusal("10.9.9.8", 8080, source_url=own) is not None
    # A named source: the same name and port, whatever private address it resolved to.
    named = "https://intranet.example:8443/rss"
    assert policy.refusal("10.0.0.5", 8443, source_url=named, host="intranet.example") is None
    assert policy.refusal("10.0.0.5", 8443, source_url=named, host="other.example") is not None
    assert policy.refusal("10.0.0.5", 8443, source_url=named) is not None  # no host given: fail closed
    assert policy.refusal("not an ip", 80) is not None
