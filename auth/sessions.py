"""Login sessions kept by the dashboard process, carried by a signed, HttpOnly cookie.

The cookie holds a random session id and its HMAC under a per-process key: never a password or
a hash. A session ends after ``idle_s`` without use, on logout (every session of that account
ends with it), or when the process restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "scanscribe_session"


@dataclass
class Session:
    """One logged-in browser: the account, how it logged in, and when it was last used."""

    sid: str
    name: str
    method: str
    address: str
    created: float
    last_used: float


class SessionStore:
    """Sessions by id, with signed cookie values and an idle lifetime."""

    def __init__(
        self,
        idle_s: float = 3600.0,
        key: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_s = idle_s
        self._key = key or secrets.token_bytes(32)
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def _sign(self, sid: str, purpose: str = "session") -> str:
        return hmac.new(self._key, f"{purpose}:{sid}".encode(), hashlib.sha256).hexdigest()

    def _sid(self, cookie: str | None) -> str | None:
        if not cookie or cookie.count(".") != 1:
            return None
        sid, sig = cookie.split(".")
        return sid if hmac.compare_digest(sig, self._sign(sid)) else None

    def create(self, name: str, method: str, address: str = "") -> str:
        """Start a session and return the cookie value for it."""
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._sessions[sid] = Session(sid, name, method, address, now, now)
        return f"{sid}.{self._sign(sid)}"

    def lookup(self, cookie: str | None, touch: bool = True) -> Session | None:
        """The live session a cookie value stands for (renewing its idle time), or None."""
        sid = self._sid(cookie)
        if sid is None:
            return None
        now = self._clock()
        with self._lock:
            sess = self._sessions.get(sid)
            if sess is None:
                return None
            if now - sess.last_used > self.idle_s:
                del self._sessions[sid]
                return None
            if touch:
                sess.last_used = now
            return sess

    def logout_token(self, cookie: str) -> str:
        """A token that lets this session's own page log it out (a cross-site link cannot)."""
        return self._sign(self._sid(cookie) or "", "logout")

    def end(self, cookie: str | None, token: str | None = None) -> str | None:
        """End the cookie's session and every other session of its account; return the account.

        With ``token``, only when it is this session's logout token.
        """
        sid = self._sid(cookie)
        if sid is None or (
            token is not None and not hmac.compare_digest(token, self._sign(sid, "logout"))
        ):
            return None
        with self._lock:
            sess = self._sessions.pop(sid, None)
            if sess is None:
                return None
            for other in [s.sid for s in self._sessions.values() if s.name == sess.name]:
                del self._sessions[other]
            return sess.name

    def end_account(self, name: str) -> int:
        """End every session of an account (removed or demoted); return how many ended."""
        with self._lock:
            gone = [s.sid for s in self._sessions.values() if s.name == name]
            for sid in gone:
                del self._sessions[sid]
            return len(gone)
