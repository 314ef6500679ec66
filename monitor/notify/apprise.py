"""AppriseNotifier: send one rendered message to a list of Apprise URLs, one result per URL.

Responsible for choosing the body format per channel and for reporting each URL's
success or failure with a secret-free error.  Email gets our own escaped HTML with
``body_format=HTML``: Apprise then sends multipart/alternative with a text/plain part it
derives from that HTML (entities decoded, tags dropped; our HTML puts one field per
block and every link's address in visible text so that part reads well).  A chat
service that supports Markdown gets our Markdown; generic webhooks (json, form, xml)
and everything else get our plain text, unless the URL asks for a ``format=``.  Where
Markdown is sent, the title is Markdown-escaped too.  One ``Apprise``
object per URL and per message: results are per URL, and Apprise's per-instance
throttle (5.5 s between messages of one plugin instance) never delays a burst; flood
control is wirewatch's job, decided in the dispatcher per subscriber.

Timeouts: every send has an explicit bound (``[alerts] send_timeout``), applied twice:
as the plugin's socket timeouts (connect and read, so its worker thread ends too) and as
Apprise's call deadline (``notify(timeout=…)``, which reports ``TIMEOUT``).  A send that
times out, or whose connection dropped after the data went out, is *unknown*, not
failed: the server may have the message.  Email carries a stable ``Message-ID`` (the
message's ``ref``), so a resend is recognisable as the same mail: Apprise builds the
header itself with ``email.utils.make_msgid``, and a header passed as a URL argument
would be added beside it, so :func:`_stable_msgid` stands in for ``make_msgid`` in
Apprise's email module and returns the ref when one is set for the current send (a
context variable, which Apprise copies into the worker thread it sends from).
It also judges a config's subscriber URLs with Apprise's parser, sending nothing
(``wirewatch check`` and the console's Config page).
A message's attachments (a surge's PNG chart) are handed to Apprise from memory
(``AttachMemory``) for channels that take files; the rest get the message without them.
This module must not read the database or decide who gets what.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    from monitor.config import Config

from monitor.config import redact
from monitor.core.render import Message, markdown_escape

_EMAIL_SCHEMES = ("mailto", "mailtos")
# Webhooks hand the body to a program, not a chat window: plain text unless asked.
_GENERIC_SCHEMES = ("json", "jsons", "form", "forms", "xml", "xmls")
_FORMAT_PARAM = re.compile(r"[?&]format=", re.IGNORECASE)
# Chats that render Markdown in what Apprise declares as plain text (Mattermost renders
# its incoming-webhook text): they get our escaped Markdown, or a feed's "[x](evil)"
# would become a live link.
_MARKDOWN_CHATS = ("mmost", "mmosts")


# What a connection that died mid-send says in Apprise's debug log: the server may hold
# the message, so the outcome is unknown.  "refused" and unresolvable hosts are plain failures.
_UNKNOWN_SIGNS = re.compile(r"timed out|timeout|unexpectedly closed|connection reset|broken pipe", re.IGNORECASE)

_message_ref: contextvars.ContextVar[str | None] = contextvars.ContextVar("wirewatch_message_ref", default=None)


def _stable_msgid(idstring: str | None = None, domain: str | None = None) -> str:
    ref = _message_ref.get()
    if ref is None:
        return make_msgid(idstring, domain)
    return f"<{ref}@{domain or 'wirewatch.localdomain'}>"


_loaded: list[ModuleType] = []


def _apprise() -> ModuleType:
    """Apprise, imported on first use (about 0.2 s with its email plugin and requests: not
    a cost for commands that send nothing), with its email plugin's Message-ID made stable."""
    if not _loaded:
        import apprise
        import apprise.plugins.email.base as email_plugin

        email_plugin.make_msgid = _stable_msgid  # type: ignore[attr-defined]
        _loaded.append(apprise)
    return _loaded[0]


@dataclass(frozen=True, slots=True)
class UrlResult:
    index: int  # position in the subscriber's ``urls``
    ok: bool
    service: str  # the URL scheme, safe to print
    error: str | None = None
    unknown: bool = False  # timed out or dropped mid-send: it may have arrived
    seconds: float = 0.0


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "?"


class AppriseNotifier:
    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout  # seconds per URL and message: ``[alerts] send_timeout``

    def send(self, targets: Sequence[tuple[int, str]], message: Message) -> list[UrlResult]:
        """Send ``message`` to each ``(index, url)`` in turn; never raises for a delivery failure."""
        return [self.send_one(index, url, message) for index, url in targets]

    def send_one(self, index: int, url: str, message: Message, timeout: float | None = None) -> UrlResult:
        """Send ``message`` to one URL within ``timeout`` seconds (default: the notifier's)."""
        limit = self.timeout if timeout is None else timeout
        scheme = scheme_of(url)
        started = time.monotonic()
        apprise = _apprise()
        notifier = apprise.Apprise(asset=apprise.AppriseAsset(service_timeout=limit))
        token = _message_ref.set(message.ref)
        try:
            with apprise.LogCapture(level=logging.DEBUG, fmt="%(levelname)s %(message)s") as captured:  # type: ignore[no-untyped-call]
                if not notifier.add(url):
                    return UrlResult(index, False, scheme, f"{scheme}:// URL rejected by Apprise (check its syntax)")
                plugin = notifier[0]
                # The plugin's own sockets end at the same bound, so its thread ends too.
                plugin.socket_connect_timeout = limit
                plugin.socket_read_timeout = limit
                body, body_format = _body_for(scheme, url, plugin, message)
                # A channel that renders Markdown renders the title too: escape it there.
                title = markdown_escape(message.subject) if body == message.markdown else message.subject
                from apprise.attachment.memory import AttachMemory

                # Attachments (a surge's chart) go from memory, where the channel takes files
                # (email as a MIME part, JSON webhooks base64-encoded); others get the text.
                attach = (
                    [AttachMemory(content=a.data, name=a.name, mimetype=a.mime) for a in message.attachments]  # type: ignore[no-untyped-call]
                    if message.attachments and getattr(plugin, "attachment_support", False)
                    else None
                )
                result = notifier.notify(body=body, title=title, body_format=body_format, timeout=limit, attach=attach)
                log_text = captured.getvalue() if hasattr(captured, "getvalue") else ""
        finally:
            _message_ref.reset(token)
        seconds = time.monotonic() - started
        if result:
            return UrlResult(index, True, scheme, seconds=seconds)
        evidence = "\n".join(
            ln for ln in log_text.splitlines() if "xception" in ln or ln.startswith(("WARNING ", "ERROR "))
        )
        # A send that ran into its deadline is unknown whatever the plugin said about it:
        # the plugin's socket timeout and Apprise's own deadline are the same bound, and
        # which one fires first (and so which words reach the log) is a race.
        timed_out = result.status == apprise.result.AppriseResultStatus.TIMEOUT or seconds >= limit * 0.95
        unknown = timed_out or bool(_UNKNOWN_SIGNS.search(evidence))
        warnings = [
            ln.split(" ", 1)[1] for ln in log_text.splitlines() if ln.startswith(("WARNING ", "ERROR ", "CRITICAL "))
        ]
        detail = _last_line("\n".join(warnings)) or ("timed out" if unknown else "delivery failed")
        if timed_out:
            detail = f"no answer within {limit:g}s"
        # Apprise sometimes echoes the URL; never let a secret out through an error.
        detail = redact(detail.replace(url, f"{scheme}://…"))
        if unknown:
            detail += " (delivery unknown)"
        return UrlResult(index, False, scheme, f"{scheme}: {detail}", unknown=unknown, seconds=seconds)


def _body_for(scheme: str, url: str, plugin: Any, message: Message) -> tuple[str, Any]:
    """The body and its Apprise format for one channel (see the module docstring)."""
    fmt = _apprise().NotifyFormat
    if scheme in _EMAIL_SCHEMES and not _FORMAT_PARAM.search(url):
        return message.html, fmt.HTML
    supported = plugin.notify_format if isinstance(plugin.notify_format, tuple) else (plugin.notify_format,)
    if _FORMAT_PARAM.search(url):
        wanted = plugin.resolve_format(None)
    elif scheme in _GENERIC_SCHEMES:
        wanted = fmt.TEXT
    elif scheme in _MARKDOWN_CHATS:
        wanted = fmt.MARKDOWN
    else:
        wanted = fmt.MARKDOWN if fmt.MARKDOWN in supported else fmt.TEXT
    if wanted == fmt.HTML:
        return message.html, fmt.HTML
    if wanted == fmt.MARKDOWN:
        return message.markdown, fmt.MARKDOWN
    return message.text, fmt.TEXT


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""


def check_subscriber_urls(config: Config) -> tuple[list[tuple[str, str]], list[str]]:
    """Judge every subscriber URL with Apprise's own parser, sending nothing.

    Returns the problems (``where``, message) and warnings.  ``${NAME}`` is filled from the
    environment, ``${NAME:-default}`` with its default when unset, and an unset variable
    with a placeholder, so a machine without the variables can still check (nothing filled
    in is ever printed).  A URL that is one unset variable is left to the config's warning
    (it is skipped until set).  A URL that carries a secret written out (Apprise's
    privacy view hides something) with no ``${NAME}`` in it is a warning: that secret is in
    the file in plain text.
    """
    import os

    from monitor.config import expand_for_check

    apprise = _apprise()

    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    for sub in config.subscribers:
        for index, template in enumerate(sub.urls):
            where = f"subscribers '{sub.name}'.urls[{index}]"
            candidate = expand_for_check(template, os.environ)
            if candidate is None:
                continue
            scheme = candidate.split("://", 1)[0] if "://" in candidate else template[:20]
            if "${" in scheme or any(c in scheme for c in "@:/"):  # never print a value filled in
                scheme = template.split("://", 1)[0]
            quiet = logging.getLogger("apprise")
            level = quiet.level
            quiet.setLevel(logging.CRITICAL)  # its own complaints about the placeholders
            try:
                plugin = apprise.Apprise.instantiate(candidate, suppress_exceptions=True)
            finally:
                quiet.setLevel(level)
            if plugin is None:
                problems.append(
                    (
                        where,
                        (
                            f"Apprise cannot use this {scheme}:// URL (unknown service or missing parts); see "
                            "https://github.com/caronc/apprise/wiki"
                        ),
                    )
                )
                continue
            try:
                hides_secret = plugin.url(privacy=True) != plugin.url(privacy=False)  # type: ignore[no-untyped-call]
            except Exception:  # a plugin's url() is third-party code; the check stays a check
                hides_secret = False
            if hides_secret and "${" not in template:
                warnings.append(
                    f"{config.path}: {where}: a secret is written in the file in plain text; "
                    "put it in the environment and write ${NAME} instead"
                )
    return problems, warnings
