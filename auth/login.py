"""One password login attempt: throttled per account and address, checked, recorded."""

from __future__ import annotations

from dataclasses import dataclass

from auth.gate import Gate
from auth.policy import Identity
from auth.sessions import SessionStore
from auth.throttle import Throttle
from auth.users import Directory


@dataclass(frozen=True)
class LoginResult:
    """What a login attempt came to: a session cookie, or why not and how long to wait."""

    cookie: str | None
    message: str
    wait_s: float = 0.0


def attempt_login(
    directory: Directory,
    sessions: SessionStore,
    throttle: Throttle,
    gate: Gate,
    name: str,
    password: str,
    address: str,
) -> LoginResult:
    """Count the attempt first, then check the password; record success and failure alike."""
    name = name.strip()
    acct_key, addr_key = f"acct:{name.lower()}", f"addr:{address}"
    wait = throttle.reserve(acct_key, addr_key)
    if wait > 0:
        gate.record(
            None, "login", name, "denied", f"throttled for {wait:.0f} s", name=name,
            address=address,
        )  # fmt: skip
        return LoginResult(
            None, f"Too many failed logins. Wait {wait:.0f} s, then try again.", wait
        )
    account = directory.check_password(name, password) if name and password else None
    if account is None:
        gate.record(None, "login", name, "failed", "wrong name or password", name=name,
                    address=address)  # fmt: skip
        return LoginResult(
            None, "Wrong name or password. Each failed attempt makes the next one wait longer."
        )
    throttle.succeeded(acct_key, addr_key)
    who = Identity(account.name, account.role, "password", address)
    gate.record(who, "login", account.name, "ok")
    return LoginResult(sessions.create(account.name, "password", address), "Logged in.")
