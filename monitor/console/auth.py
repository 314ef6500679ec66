"""Who is asking: the console's login token, session cookies and CSRF tokens.

Responsible for deciding whether a request is an operator's: ``Authorization: Bearer
<token>`` (scripts; a header no browser sends on its own, so no CSRF token is needed),
or a session cookie set by the login form (people).  A session is ``issued.nonce.mac``,
an HMAC under a key derived from the token, so changing ``[console] token`` (a reload)
logs every session out, and nothing is stored on the server.  A form action made with
a cookie must carry the session's CSRF token (an HMAC of its nonce) and, when the
browser sends one, an ``Origin`` of this very host.  Comparisons are constant-time.
This module must not read the database or log the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "ww_session"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True, slots=True)
class Operator:
    """Who made a request, as written in the action log (never the token itself)."""

    how: str  # "bearer" | "session"
    session: str  # the session's nonce ("" for bearer)
    client: str  # address the request came from

    @property
    def name(self) -> str:
        if self.how == "bearer":
            return f"bearer token from {self.client}"
        return f"session {self.session[:8]} from {self.client}"


def _key(token: str) -> bytes:
    return hashlib.sha256(b"wirewatch-console\0" + token.encode()).digest()


def _mac(token: str, message: str) -> str:
    return hmac.new(_key(token), message.encode(), hashlib.sha256).hexdigest()


def token_matches(token: str, offered: str) -> bool:
    return bool(token) and hmac.compare_digest(token.encode(), offered.encode())


def new_session(token: str, now: float | None = None) -> str:
    issued = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    return f"{issued}.{nonce}.{_mac(token, f'{issued}.{nonce}')}"


def session_nonce(token: str, cookie: str, now: float | None = None) -> str | None:
    """The nonce of a valid, unexpired session cookie, else None."""
    if not token:
        return None
    parts = cookie.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    issued, nonce, mac = parts
    if not hmac.compare_digest(mac, _mac(token, f"{issued}.{nonce}")):
        return None
    age = (time.time() if now is None else now) - int(issued)
    if age < 0 or age > SESSION_SECONDS:
        return None
    return nonce


def csrf_token(token: str, nonce: str) -> str:
    return _mac(token, f"csrf.{nonce}")[:40]


def csrf_ok(token: str, nonce: str, offered: str) -> bool:
    return bool(offered) and hmac.compare_digest(csrf_token(token, nonce), offered)
