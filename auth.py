"""Access control: who may start scans, password hashes, and the delay after failed logins.

The dashboard binds 127.0.0.1 by default. Served beyond loopback it must have a login, either
Streamlit's OIDC (``st.login``, configured under ``[auth]`` in secrets.toml) or a password whose
salted scrypt hash is in ``SCANSCRIBE_PASSWORD_HASH``. Without one, scans are refused.

Make a hash with ``python -m auth hash`` (it reads the password without echoing it).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import ipaddress
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(address: str) -> bool:
    """Whether a server address only accepts connections from this machine."""
    addr = address.strip().strip("[]").lower()
    if addr in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False  # 0.0.0.0 parses; a hostname or empty string may mean any interface


def host_header_allowed(host_header: str | None, exposed: bool) -> bool:
    """Whether a request's Host header fits a loopback-bound server (DNS-rebinding defence).

    A page on another site can make a browser send requests to 127.0.0.1 under a foreign name;
    a server bound to loopback only ever expects loopback names.
    """
    if exposed or not host_header:
        return True  # an exposed server is guarded by its login instead
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return is_loopback(host)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A salted scrypt hash in the form ``scrypt$N$r$p$salt$digest`` (base64 parts)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Compare a password with a stored hash in constant time; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        want = base64.b64decode(digest_b64, validate=True)
        got = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


class LoginThrottle:
    """A growing delay after failed logins, shared by every session of the process."""

    def __init__(
        self,
        base_s: float = 0.5,
        cap_s: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._failures = 0
        self._base = base_s
        self._cap = cap_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def delay(self) -> float:
        """Seconds the next attempt waits before it is checked."""
        with self._lock:
            if self._failures == 0:
                return 0.0
            return float(min(self._cap, self._base * 2 ** (self._failures - 1)))

    def attempt(self, password: str, stored: str) -> bool:
        """Wait out the current delay, then check the password and record the outcome."""
        wait = self.delay()
        if wait:
            self._sleep(wait)
        ok = verify_password(password, stored)
        with self._lock:
            self._failures = 0 if ok else self._failures + 1
        return ok


@dataclass(frozen=True)
class Access:
    """What the current visitor may do, and why not when they may not."""

    exposed: bool
    method: str | None  # "oidc", "password" or None
    logged_in: bool
    user: str

    @property
    def needs_login(self) -> bool:
        """A login method is configured and the visitor has not used it yet."""
        return self.method is not None and not self.logged_in

    def scan_refusal(self) -> str | None:
        """Why a scan may not start now, or None when it may."""
        if self.exposed and self.method is None:
            return (
                "Scans are disabled: this dashboard listens beyond loopback and no login is "
                "configured. Set SCANSCRIBE_PASSWORD_HASH (make one with `python -m auth hash`) "
                "or configure [auth] for st.login in .streamlit/secrets.toml, or bind the "
                "server to 127.0.0.1."
            )
        if self.needs_login:
            return "Log in before starting a scan."
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m auth hash``: print a hash for SCANSCRIBE_PASSWORD_HASH."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["hash"]:
        sys.stderr.write("usage: python -m auth hash\n")
        return 2
    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if len(password) < 12:
        sys.stderr.write("Refused: use a password of at least 12 characters.\n")
        return 2
    sys.stdout.write(hash_password(password) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
