"""Accounts and roles: the users file (TOML), the OIDC allowlist, and who holds which role now.

The file named by ``SCANSCRIBE_USERS`` looks like this and is written by ``python -m auth``::

    [users.ana]
    role = "analyst"
    password = "scrypt$16384$8$1$...$..."

    [oidc]
    "lead@example.com" = "admin"
    "@example.com" = "viewer"

It is re-read whenever it changes, so a role change or a removed account takes effect on the
next action, not the next login.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from auth.passwords import hash_password, looks_like_hash, verify_password
from config import ConfigError

ROLES = ("viewer", "analyst", "admin")
ENV_ADMIN = "admin"  # the account SCANSCRIBE_PASSWORD_HASH stands for
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_DOMAIN = re.compile(r"^@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
# Checked against when the account is unknown, so the time taken does not say which names exist.
_DUMMY_HASH = hash_password("no account has this password", salt=b"\0" * 16)


class UsersFileError(ConfigError):
    """The users file cannot be used; the message names the file, the problem and the fix."""


@dataclass(frozen=True)
class Account:
    """One password account."""

    name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class Users:
    """The users file's content: password accounts and the OIDC allowlist."""

    accounts: dict[str, Account] = field(default_factory=dict)
    allow: dict[str, str] = field(default_factory=dict)


def check_role(role: str) -> str:
    """The role itself, or UsersFileError naming the roles there are."""
    if role not in ROLES:
        raise UsersFileError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    return role


def check_name(name: str) -> str:
    """An account name, or UsersFileError saying what a name may hold."""
    if not _NAME.match(name):
        raise UsersFileError(
            f"Account name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


def check_allow_entry(entry: str) -> str:
    """An allowlist entry (an e-mail address or ``@domain``), lower-cased."""
    low = entry.strip().lower()
    if not (_EMAIL.match(low) or _DOMAIN.match(low)):
        raise UsersFileError(
            f"Allowlist entry {entry!r} is neither an e-mail address (ana@example.com) nor a "
            "domain written as @example.com."
        )
    return low


def parse_users(text: str, source: str) -> Users:
    """Read a users file's text, or raise UsersFileError naming ``source`` and the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"{source} is not valid TOML ({exc}). Fix or recreate it.") from None
    unknown = set(data) - {"users", "oidc"}
    if unknown:
        raise UsersFileError(
            f"{source}: unknown section(s) {', '.join(sorted(unknown))}; only [users.NAME] and "
            "[oidc] are allowed."
        )
    accounts: dict[str, Account] = {}
    seen: set[str] = set()
    raw_users = data.get("users", {})
    if not isinstance(raw_users, dict):
        raise UsersFileError(f"{source}: 'users' must be a table of [users.NAME] sections.")
    for name, body in raw_users.items():
        where = f"{source}, user {name!r}"
        try:
            check_name(name)
        except UsersFileError as exc:
            raise UsersFileError(f"{where}: {exc}") from None
        if name.lower() in seen:
            raise UsersFileError(f"{where}: duplicate user (names are compared ignoring case).")
        seen.add(name.lower())
        if not isinstance(body, dict) or set(body) - {"role", "password"}:
            raise UsersFileError(f"{where}: only 'role' and 'password' may be set.")
        role = body.get("role")
        if not isinstance(role, str):
            raise UsersFileError(f"{where}: 'role' is missing; set one of {', '.join(ROLES)}.")
        try:
            check_role(role)
        except UsersFileError as exc:
            raise UsersFileError(f"{where}: {exc}") from None
        pw = body.get("password")
        if not isinstance(pw, str) or not looks_like_hash(pw):
            raise UsersFileError(
                f"{where}: 'password' is not a scrypt hash. Set it with "
                f"`python -m auth user add {name} --role {role}` (or remove and add the user)."
            )
        accounts[name] = Account(name, role, pw)
    allow: dict[str, str] = {}
    raw_allow = data.get("oidc", {})
    if not isinstance(raw_allow, dict):
        raise UsersFileError(f"{source}: [oidc] must map e-mail addresses or @domains to roles.")
    for entry, role in raw_allow.items():
        try:
            key = check_allow_entry(entry)
            check_role(role if isinstance(role, str) else repr(role))
        except UsersFileError as exc:
            raise UsersFileError(f"{source}, [oidc]: {exc}") from None
        if key in allow:
            raise UsersFileError(f"{source}, [oidc]: {entry!r} is listed twice.")
        allow[key] = str(role)
    return Users(accounts, allow)


def dump_users(users: Users) -> str:
    """The users file's text for ``users`` (JSON strings are valid TOML basic strings)."""
    lines = ["# ScanScribe accounts. Manage them with `python -m auth user ...`.", ""]
    for acc in sorted(users.accounts.values(), key=lambda a: a.name.lower()):
        lines += [
            f"[users.{json.dumps(acc.name)}]",
            f"role = {json.dumps(acc.role)}",
            f"password = {json.dumps(acc.password_hash)}",
            "",
        ]
    if users.allow:
        lines.append("[oidc]")
        lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(users.allow.items())]
        lines.append("")
    return "\n".join(lines)


def load_users(path: Path) -> Users:
    """Read the users file, or raise UsersFileError (a missing file is an error too)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsersFileError(
            f"SCANSCRIBE_USERS: {str(path)!r} does not exist. Create it with "
            "`python -m auth user add NAME --role admin`."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"SCANSCRIBE_USERS: {str(path)!r} cannot be read ({exc}).") from None
    return parse_users(text, str(path))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def edit_users(path: Path, change: Callable[[Users], Users]) -> Users:
    """Apply ``change`` to the users file under a lock and replace the file atomically (0600)."""
    with _locked(path):
        users = load_users(path) if path.exists() else Users()
        new = change(users)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(dump_users(new))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    return new


def add_user(users: Users, name: str, role: str, password: str) -> Users:
    """``users`` with a new account; refuses a duplicate name, a bad role or a short password."""
    check_name(name)
    check_role(role)
    if any(n.lower() == name.lower() for n in users.accounts):
        raise UsersFileError(
            f"User {name!r} already exists. Change the role with `python -m auth user set-role "
            f"{name} ROLE`, or remove the user first."
        )
    check_password_text(password)
    return replace(
        users, accounts={**users.accounts, name: Account(name, role, hash_password(password))}
    )


def check_password_text(password: str) -> None:
    """Refuse an empty or short password with what to do instead."""
    from auth.passwords import MIN_PASSWORD

    if not password:
        raise UsersFileError("The password is empty: type one of at least 12 characters.")
    if len(password) < MIN_PASSWORD:
        raise UsersFileError(f"Use a password of at least {MIN_PASSWORD} characters.")


class Directory:
    """Who may log in and with which role, read from the users file whenever it changes."""

    def __init__(self, users_path: Path | None, admin_hash: str | None = None) -> None:
        self.users_path = users_path
        self.admin_hash = admin_hash
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._users = Users()
        if admin_hash is not None and not looks_like_hash(admin_hash):
            raise UsersFileError(
                "SCANSCRIBE_PASSWORD_HASH is not a scrypt hash. Make one with "
                "`python -m auth hash`, or remove the setting."
            )
        if users_path is not None:
            self.users()  # a broken file stops start-up here

    @property
    def has_passwords(self) -> bool:
        """Whether password login is configured (a users file or SCANSCRIBE_PASSWORD_HASH)."""
        return self.users_path is not None or self.admin_hash is not None

    def users(self) -> Users:
        """The current users file (re-read when its size or time changed); UsersFileError."""
        if self.users_path is None:
            return Users()
        with self._lock:
            try:
                st = self.users_path.stat()
                stamp = (st.st_mtime, st.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp is None or stamp != self._stamp:
                self._users = load_users(self.users_path)
                self._stamp = stamp
            return self._users

    def account(self, name: str) -> Account | None:
        """The password account called ``name`` now, or None."""
        acc = self.users().accounts.get(name)
        if acc is None and self.admin_hash and name == ENV_ADMIN:
            return Account(ENV_ADMIN, "admin", self.admin_hash)
        return acc

    def check_password(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is right, else None (same work for unknown names)."""
        acc = self.account(name)
        ok = verify_password(password, acc.password_hash if acc else _DUMMY_HASH)
        return acc if ok and acc is not None else None

    def oidc_role(self, email: str) -> str | None:
        """The role the allowlist gives this address (exact address first, then @domain)."""
        allow = self.users().allow
        low = email.strip().lower()
        if low in allow:
            return allow[low]
        domain = "@" + low.rsplit("@", 1)[-1] if "@" in low else None
        return allow.get(domain) if domain else None
