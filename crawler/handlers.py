"""Scrapy's HTTP download handler with the egress policy applied to the address connected to.

Responsible for enforcing :class:`crawler.egress.EgressPolicy` on every request Scrapy
sends (feeds, sitemaps, article pages, robots.txt and every redirect hop, since each hop
is a new request through this handler).  The check sits where the address is known and
nothing has been sent yet: the resolver of each connection attempt passes on only the
resolved addresses the policy allows, and Twisted connects to exactly those (it does not
resolve again), so DNS rebinding cannot slip another address in between check and use.
A connection taken from the keep-alive pool is checked again against the request it is
reused for, because the pool is keyed by host and port, not by the source a request
belongs to.  It must not decide policy itself (that is :mod:`crawler.egress`), and it
does not cover proxies: with ``meta["proxy"]`` the connection goes to the operator's
proxy, which is then responsible for egress.

This subclasses private parts of Scrapy's HTTP/1.1 handler (``_ScrapyAgent``,
``_BindAddressAgent``): ``tests/hostile/test_egress.py`` fails if an upgrade breaks it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from scrapy import Request
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler, _BindAddressAgent, _ScrapyAgent
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.python.failure import Failure
from twisted.web.client import URI, HTTPConnectionPool
from twisted.web.error import SchemeNotSupported
from zope.interface import implementer  # type: ignore[import-untyped]

from crawler.egress import EgressPolicy

# Request meta: the configured URL of the source a request is made for.
SOURCE_META = "egress_source"

Check = Callable[[str, int], "str | None"]


class EgressRefused(Exception):
    """A connection refused by the egress policy; the message is the reason."""


def make_check(policy: EgressPolicy, host: str, sources: Sequence[str]) -> Check:
    """The check for one request: allowed by the policy alone, or as one source's own origin."""

    def check(ip: str, port: int) -> str | None:
        reason = policy.refusal(ip, port)
        if reason is None:
            return None
        for source in sources:
            if policy.refusal(ip, port, source_url=source, host=host) is None:
                return None
        return reason

    return check


@implementer(IHostnameResolver)
class _FilteringResolver:
    """Passes on only the resolved addresses ``check`` allows; remembers why others went."""

    def __init__(self, inner: Any, check: Check) -> None:
        self.inner = inner
        self.check = check
        self.refusals: list[str] = []

    def resolveHostName(  # Twisted's interface names, camelCase
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[Any] | None = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        outer = self

        @implementer(IResolutionReceiver)
        class Receiver:
            @staticmethod
            def resolutionBegan(resolution: Any) -> None:
                resolutionReceiver.resolutionBegan(resolution)

            @staticmethod
            def addressResolved(address: Any) -> None:
                reason = outer.check(address.host, address.port)
                if reason is None:
                    resolutionReceiver.addressResolved(address)
                else:
                    outer.refusals.append(reason)

            @staticmethod
            def resolutionComplete() -> None:
                resolutionReceiver.resolutionComplete()

        inner: Any = self.inner
        return inner.resolveHostName(Receiver(), hostName, portNumber, addressTypes, transportSemantics)


class _CheckedEndpoint(HostnameEndpoint):
    """A HostnameEndpoint that connects only to the resolved addresses the policy allows."""

    def __init__(self, reactor: Any, host: str, port: int, check: Check, **kwargs: Any) -> None:
        # Set first: HostnameEndpoint asks for its resolver in __init__ already.
        self._check = check
        self._filter: _FilteringResolver | None = None
        super().__init__(reactor, host, port, **kwargs)

    def _getNameResolverAndMaybeWarn(self, reactor: object) -> Any:
        self._filter = _FilteringResolver(super()._getNameResolverAndMaybeWarn(reactor), self._check)
        return self._filter

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        d = super().connect(protocolFactory)

        def refused(failure: Failure) -> Failure:
            lookup_failed: Any = failure.check(error.DNSLookupError)  # type: ignore[no-untyped-call]
            if self._filter is not None and self._filter.refusals and lookup_failed:
                raise EgressRefused(self._filter.refusals[0])
            return failure

        d.addErrback(refused)
        return d


class _EndpointFactory:
    """Twisted's standard endpoint factory with the checked endpoint underneath TLS."""

    def __init__(self, reactor: Any, policy_for_https: Any, timeout: float | None, bind: Any, check: Check) -> None:
        self.reactor = reactor
        self.policy_for_https = policy_for_https
        self._connectTimeout = timeout  # read by Scrapy's agents
        self._bindAddress = bind
        self.check = check

    def endpointForURI(self, uri: URI) -> Any:
        kwargs: dict[str, Any] = {"bindAddress": self._bindAddress}
        if self._connectTimeout is not None:
            kwargs["timeout"] = self._connectTimeout
        host = uri.host.decode("ascii")
        endpoint = _CheckedEndpoint(self.reactor, host, uri.port, self.check, **kwargs)
        if uri.scheme == b"http":
            return endpoint
        if uri.scheme == b"https":
            tls_inner: Any = endpoint
            return wrapClientTLS(self.policy_for_https.creatorForNetloc(uri.host, uri.port), tls_inner)
        raise SchemeNotSupported(f"Unsupported scheme: {uri.scheme!r}")


class _CheckedPool:
    """The handler's keep-alive pool, with the peer of a reused connection checked again."""

    def __init__(self, pool: HTTPConnectionPool, check: Check) -> None:
        self.pool = pool
        self.check = check

    def getConnection(self, key: Any, endpoint: Any) -> Deferred[Any]:
        d: Deferred[Any] = self.pool.getConnection(key, endpoint)

        def checked(proto: Any) -> Any:
            # A cached connection comes wrapped (Twisted's _RetryingHTTP11ClientProtocol).
            transport = getattr(proto, "_clientProtocol", proto).transport
            peer = transport.getPeer()
            reason = self.check(peer.host, peer.port)
            if reason is not None:
                transport.abortConnection()
                raise EgressRefused(reason)
            return proto

        d.addCallback(checked)
        return d

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


class _EgressScrapyAgent(_ScrapyAgent):
    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check = check

    def _get_agent(self, request: Request, timeout: float) -> Any:
        agent = super()._get_agent(request, timeout)
        if type(agent) is _BindAddressAgent:
            # Direct connections only: a proxy agent connects to the operator's proxy.
            from twisted.internet import reactor

            factory = _EndpointFactory(
                reactor,
                self._contextFactory,
                timeout,
                agent._endpointFactory._bindAddress,
                self._check,
            )
            agent._endpointFactory = factory
            agent._pool = _CheckedPool(agent._pool, self._check)  # type: ignore[assignment]
        return agent


class EgressHTTPDownloadHandler(HTTP11DownloadHandler):
    """``http``/``https`` download handler; the policy comes from ``WIREWATCH_EGRESS``."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        policy = crawler.settings.get("WIREWATCH_EGRESS")
        self.policy: EgressPolicy = policy if isinstance(policy, EgressPolicy) else EgressPolicy()

    def sources_for(self, request: Request) -> list[str]:
        """Whose origin ``request`` may reach: its source's, or (robots.txt, which Scrapy
        requests without our meta) any source of this crawl's in flight, since such a request only
        exists because a request of that origin was checked and is waiting on it."""
        source = request.meta.get(SOURCE_META)
        if source:
            return [source]
        urls = getattr(self._crawler.spider, "source_urls", None)
        return list(urls()) if urls is not None else []

    async def download_request(self, request: Request) -> Response:
        host = urlparse_cached(request).hostname or ""
        check = make_check(self.policy, host, self.sources_for(request))
        agent = _EgressScrapyAgent(
            check=check,
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            pool=self._pool,
            maxsize=self._default_maxsize,
            warnsize=self._default_warnsize,
            fail_on_dataloss=self._fail_on_dataloss,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        from scrapy.utils._download_handlers import wrap_twisted_exceptions

        with wrap_twisted_exceptions():
            return await maybe_deferred_to_future(agent.download_request(request))
