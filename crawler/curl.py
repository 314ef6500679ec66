"""CurlTransport: the feed poller's HTTP client on libcurl's multi interface (pycurl), driven by asyncio.

Responsible for one thing: sending one GET and returning its status, headers and raw body,
bounded by ``max_body``, or raising the error that says why not.  It is what
:class:`crawler.poller.FeedPoller` sends each hop through when ``[fetch] client = "curl"``;
the policy (robots.txt, per-host slots and delays, backoff, redirects hop by hop, the
scheme rule, inflating gzip) stays in the poller, which treats both clients alike.

Why libcurl: a bare conditional GET costs libcurl's multi interface 0.024 CPU s per 1,000
against aiohttp's 0.195 (``benchmarks/results/poller.md``), and a warm poll is nothing
but conditional GETs.  One ``CurlMulti`` lives as long as the transport: its connection
cache keeps connections alive across requests (at most ``concurrency``), its DNS cache
answers repeated names.  libcurl does the I/O inside ``socket_action`` without the GIL;
asyncio only watches the sockets libcurl names (``M_SOCKETFUNCTION``) and keeps its one
timer (``M_TIMERFUNCTION``).

The egress check is applied twice, both times to the address itself, never to a name:
before a new connection is dialled (``OPENSOCKETFUNCTION`` sees the resolved address, so
nothing is sent to a refused one, not even a TCP SYN), and before each request is sent on
a connection, new or reused (``PREREQFUNCTION``), because the connection cache is keyed
by host and port while a refusal may depend on the requesting source.  Proxies from the
environment are ignored (as aiohttp's ``trust_env=False``); only http and https are
spoken; libcurl neither follows redirects nor decodes the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pycurl

# crawler.poller.EgressCheck: (ip, port, *, source_url, host) -> why not, or None.
EgressCheck = Callable[..., str | None]

# libcurl's error codes (curl/curl.h) the poller tells apart.
_COULDNT_RESOLVE = (pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_RESOLVE_PROXY)
_TIMED_OUT = pycurl.E_OPERATION_TIMEDOUT
_WRITE_ABORTED = pycurl.E_WRITE_ERROR
_CALLBACK_ABORTED = pycurl.E_ABORTED_BY_CALLBACK
_PARTIAL = (pycurl.E_PARTIAL_FILE, pycurl.E_RECV_ERROR, pycurl.E_GOT_NOTHING)
_TLS = (
    pycurl.E_SSL_CONNECT_ERROR,
    pycurl.E_PEER_FAILED_VERIFICATION,
    pycurl.E_SSL_CACERT_BADFILE,
    pycurl.E_SSL_CERTPROBLEM,
    pycurl.E_SSL_CIPHER,
    getattr(pycurl, "E_SSL_CACERT", 60),
)
_COULDNT_CONNECT = pycurl.E_COULDNT_CONNECT
_URL = (pycurl.E_URL_MALFORMAT, pycurl.E_UNSUPPORTED_PROTOCOL)


class CurlError(Exception):
    """A transfer that ended without a usable response; ``kind`` says which kind.

    ``kind`` is one of ``timeout``, ``dns``, ``refused``, ``connect``, ``tls``, ``url``,
    ``egress`` (``reason`` says why) or ``other``.
    """

    def __init__(self, kind: str, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.reason = reason


@dataclass(slots=True)
class Response:
    """What came back: the final status line's code, its headers (lower-case names, first
    value of each), the raw body, and whether the body was cut short or outgrew ``max_body``."""

    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False
    too_big: bool = False


@dataclass(slots=True)
class _Transfer:
    future: asyncio.Future[None]
    max_body: int
    source_url: str | None
    url: str
    egress: EgressCheck | None
    # Sockets handed to libcurl, which keeps a dup() of each: closed once its call returns.
    handed: list[socket.socket]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    too_big: bool = False
    refused: str | None = None
    error: tuple[int, str] | None = None  # libcurl's code and message when the transfer failed

    # --- libcurl callbacks (called inside socket_action, on the event loop's thread) ---

    def on_header(self, line: bytes) -> int | None:
        if line[:5] == b"HTTP/":
            self.headers = {}  # a new response (after a 1xx): its own headers only
            return None
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        key = name.strip().decode("latin-1").lower()
        if key not in self.headers:
            self.headers[key] = value.strip().decode("latin-1")
        if key == "content-length":
            try:
                if int(self.headers[key]) > self.max_body:
                    self.too_big = True
                    return 0  # not len(line): libcurl aborts the transfer (E_WRITE_ERROR)
            except ValueError:
                pass
        return None

    def on_body(self, chunk: bytes) -> int | None:
        self.body += chunk
        if len(self.body) > self.max_body:
            self.too_big = True
            return 0
        return None

    def _refusal(self, ip: str, port: int) -> str | None:
        assert self.egress is not None
        reason = self.egress(ip, port, source_url=self.source_url)
        if reason is not None:
            # Only a private address asks more: is it the source's own host (by name)?
            reason = self.egress(ip, port, source_url=self.source_url, host=urlsplit(self.url).hostname or "")
        return reason

    def open_socket(self, purpose: int, address: Any) -> Any:
        if self.egress is not None:
            reason = self._refusal(address.addr[0], address.addr[1])
            if reason is not None:
                self.refused = reason
                return pycurl.SOCKET_BAD
        sock = socket.socket(address.family, address.socktype, address.protocol)
        self.handed.append(sock)
        return sock

    def before_request(self, primary_ip: str, _local_ip: str, primary_port: int, _local_port: int) -> int:
        if self.egress is not None:
            reason = self._refusal(primary_ip, primary_port)
            if reason is not None:
                self.refused = reason
                return int(pycurl.PREREQFUNC_ABORT)
        return int(pycurl.PREREQFUNC_OK)


class CurlTransport:
    """One libcurl multi handle on the running event loop; see the module docstring."""

    def __init__(self, *, concurrency: int, user_agent: str, accept_encoding: str, egress: EgressCheck | None) -> None:
        self.user_agent = user_agent
        self.accept_encoding = accept_encoding
        self.egress = egress
        self._loop: asyncio.AbstractEventLoop | None = None
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, max(1, concurrency))
        self._multi.setopt(pycurl.M_MAXCONNECTS, max(1, concurrency))
        self._timer: asyncio.TimerHandle | None = None
        self._watched: dict[int, int] = {}
        self._transfers: dict[pycurl.Curl, _Transfer] = {}
        self._free: list[pycurl.Curl] = []
        self._cainfo = _ca_bundle()
        self._handed: list[socket.socket] = []
        self._closed = False

    # ------------------------------------------------------------------ requests

    async def get(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        max_body: int,
        timeout: float,
        source_url: str | None,
    ) -> Response:
        """GET ``url`` once (no redirect followed); raises :class:`CurlError`."""
        if self._closed:
            raise RuntimeError("the curl transport is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a CurlTransport serves one event loop")
        handle = self._free.pop() if self._free else pycurl.Curl()
        transfer = _Transfer(loop.create_future(), max_body, source_url, url, self.egress, self._handed)
        self._configure(handle, url, headers, timeout, transfer)
        self._transfers[handle] = transfer
        self._multi.add_handle(handle)
        try:
            await transfer.future
        except asyncio.CancelledError:
            self._drop(handle)
            raise
        status = int(handle.getinfo(pycurl.RESPONSE_CODE) or 0)
        error = transfer.error
        os_errno = int(handle.getinfo(pycurl.OS_ERRNO) or 0) if error is not None else 0
        self._release(handle)
        if error is not None:
            code, message = error
            truncated_ok = code in _PARTIAL and status > 0 and not transfer.too_big
            if not truncated_ok and not (transfer.too_big and code in (_WRITE_ABORTED, _CALLBACK_ABORTED)):
                raise _classify(code, message, os_errno, transfer.refused)
            return Response(
                status, transfer.headers, bytes(transfer.body), truncated=truncated_ok, too_big=transfer.too_big
            )
        return Response(status, transfer.headers, bytes(transfer.body), too_big=transfer.too_big)

    def _configure(
        self, handle: pycurl.Curl, url: str, headers: Mapping[str, str], timeout: float, transfer: _Transfer
    ) -> None:
        setopt = handle.setopt
        setopt(pycurl.URL, url)
        setopt(pycurl.NOSIGNAL, 1)
        setopt(pycurl.FOLLOWLOCATION, 0)
        setopt(pycurl.PROXY, "")
        setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
        setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout * 1000)))
        setopt(pycurl.HTTP_TRANSFER_DECODING, 1)
        setopt(pycurl.HTTP_CONTENT_DECODING, 0)
        if self._cainfo:
            setopt(pycurl.CAINFO, self._cainfo)
        setopt(
            pycurl.HTTPHEADER,
            [
                f"User-Agent: {self.user_agent}",
                f"Accept-Encoding: {self.accept_encoding}",
                *(f"{k}: {v}" for k, v in headers.items()),
            ],
        )
        setopt(pycurl.HEADERFUNCTION, transfer.on_header)
        setopt(pycurl.WRITEFUNCTION, transfer.on_body)
        setopt(pycurl.OPENSOCKETFUNCTION, transfer.open_socket)
        setopt(pycurl.PREREQFUNCTION, transfer.before_request)

    def _release(self, handle: pycurl.Curl) -> None:
        """A finished handle back to the free list, its callbacks (and their transfer) dropped."""
        self._transfers.pop(handle, None)
        handle.reset()
        if not self._closed:
            self._free.append(handle)
        else:
            handle.close()

    def _drop(self, handle: pycurl.Curl) -> None:
        """Abandon a running transfer (its request was cancelled)."""
        if handle in self._transfers:
            with contextlib.suppress(pycurl.error):
                self._multi.remove_handle(handle)
        self._release(handle)

    # ------------------------------------------------------------------ the loop's side

    def _on_socket(self, event: int, fd: int, _multi: Any, _data: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        old = self._watched.get(fd, 0)
        if event == pycurl.POLL_REMOVE:
            if old & pycurl.POLL_IN:
                loop.remove_reader(fd)
            if old & pycurl.POLL_OUT:
                loop.remove_writer(fd)
            self._watched.pop(fd, None)
            return
        want_in = event in (pycurl.POLL_IN, pycurl.POLL_INOUT)
        want_out = event in (pycurl.POLL_OUT, pycurl.POLL_INOUT)
        if want_in and not old & pycurl.POLL_IN:
            loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        elif not want_in and old & pycurl.POLL_IN:
            loop.remove_reader(fd)
        if want_out and not old & pycurl.POLL_OUT:
            loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        elif not want_out and old & pycurl.POLL_OUT:
            loop.remove_writer(fd)
        self._watched[fd] = (pycurl.POLL_IN if want_in else 0) | (pycurl.POLL_OUT if want_out else 0)

    def _on_timer(self, timeout_ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if timeout_ms >= 0 and self._loop is not None and not self._closed:
            self._timer = self._loop.call_later(timeout_ms / 1000, self._act, pycurl.SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, events: int) -> None:
        if self._closed:
            return
        while True:
            ret, _running = self._multi.socket_action(fd, events)
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        self._close_handed()
        self._finish()

    def _close_handed(self) -> None:
        while self._handed:
            self._handed.pop().close()

    def _finish(self) -> None:
        while True:
            queued, done, failed = self._multi.info_read()
            for handle in done:
                self._complete(handle, None)
            for handle, code, message in failed:
                self._complete(handle, (code, message))
            if not queued:
                break

    def _complete(self, handle: pycurl.Curl, error: tuple[int, str] | None) -> None:
        self._multi.remove_handle(handle)
        transfer = self._transfers.get(handle)
        if transfer is None:
            return
        transfer.error = error
        if not transfer.future.done():
            transfer.future.set_result(None)

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle, transfer in list(self._transfers.items()):
            if not transfer.future.done():  # its request fails rather than waiting forever
                transfer.future.set_exception(CurlError("other", "the HTTP client was closed"))
            self._drop(handle)
        if self._loop is not None:
            for fd, watched in list(self._watched.items()):
                if watched & pycurl.POLL_IN:
                    self._loop.remove_reader(fd)
                if watched & pycurl.POLL_OUT:
                    self._loop.remove_writer(fd)
        self._watched.clear()
        self._close_handed()
        for handle in self._free:
            handle.close()
        self._free.clear()
        self._multi.close()


def _classify(code: int, message: str, os_errno: int, refused: str | None) -> CurlError:
    if refused is not None:
        return CurlError("egress", message, refused)
    if code == _TIMED_OUT:
        return CurlError("timeout", message)
    if code in _COULDNT_RESOLVE:
        return CurlError("dns", message)
    if code == _COULDNT_CONNECT:
        return CurlError("refused" if os_errno == errno.ECONNREFUSED else "connect", message)
    if code in _TLS:
        return CurlError("tls", message)
    if code in _URL:
        return CurlError("url", message)
    return CurlError("other", message)


def _ca_bundle() -> str | None:
    """The CA file libcurl verifies with: certifi's when installed, else the system's."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with our dependencies
        import ssl

        paths = ssl.get_default_verify_paths()
        return paths.cafile or paths.openssl_cafile
    return certifi.where()
