"""``python -m auth``: password hashes, accounts and roles, and the OIDC allowlist.

Exit codes: 0 done, 2 refused (bad input or a users file that cannot be used).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from auth.gate import Gate
from auth.passwords import hash_password
from auth.policy import Identity
from auth.users import (
    UsersFileError,
    add_user,
    check_allow_entry,
    check_password_text,
    check_role,
    edit_users,
    load_users,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m auth", description="ScanScribe access control.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("hash", help="print a scrypt hash for SCANSCRIBE_PASSWORD_HASH")
    user = sub.add_parser("user", help="manage password accounts in SCANSCRIBE_USERS")
    us = user.add_subparsers(dest="ucmd", required=True)
    add = us.add_parser("add", help="add an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, help="viewer, analyst or admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    lst = us.add_parser("list", help="list accounts and roles")
    lst.add_argument("--format", choices=("text", "json"), default="text")
    sr = us.add_parser("set-role", help="change an account's role")
    sr.add_argument("name")
    sr.add_argument("role")
    rm = us.add_parser("remove", help="remove an account")
    rm.add_argument("name")
    allow = sub.add_parser("allow", help="manage the OIDC allowlist in SCANSCRIBE_USERS")
    al = allow.add_subparsers(dest="acmd", required=True)
    aa = al.add_parser("add", help="allow an e-mail address or @domain with a role")
    aa.add_argument("entry")
    aa.add_argument("--role", required=True)
    ar = al.add_parser("remove", help="remove an allowlist entry")
    ar.add_argument("entry")
    alst = al.add_parser("list", help="list the allowlist")
    alst.add_argument("--format", choices=("text", "json"), default="text")
    return p


def _users_path() -> Path:
    raw = os.environ.get("SCANSCRIBE_USERS", "").strip()
    if not raw:
        raise UsersFileError(
            "SCANSCRIBE_USERS is not set: set it to the path of the users file "
            "(for example /etc/scanscribe/users.toml); it is created on the first `user add`."
        )
    return Path(raw).expanduser()


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UsersFileError("The two passwords differ; nothing was changed.")
    return first


def _audit(action: str, target: str, detail: str) -> None:
    """Record an account change in the store's audit trail, as the machine's local user."""
    import config
    import services
    from store.base import StoreError

    try:
        cfg = config.load()
        store = services.open_store(cfg)
    except (config.ConfigError, StoreError) as exc:
        sys.stderr.write(f"Warning: the change was made but not recorded in the audit: {exc}\n")
        return
    try:
        Gate(store).record(Identity.local(cfg.user), action, target, "ok", detail)
    finally:
        store.close()


def run(argv: list[str]) -> int:
    """Run one command; raises UsersFileError for refused input."""
    args = _parser().parse_args(argv)
    if args.cmd == "hash":
        password = _read_password(False)
        check_password_text(password)
        sys.stdout.write(hash_password(password) + "\n")
        return 0
    path = _users_path()
    if args.cmd == "user":
        if args.ucmd == "list":
            users = load_users(path)
            rows = [{"name": a.name, "role": a.role} for a in users.accounts.values()]
            if args.format == "json":
                sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            else:
                for row in rows:
                    sys.stdout.write(f"{row['name']}\t{row['role']}\n")
            return 0
        if args.ucmd == "add":
            check_role(args.role)
            if path.exists():
                load_users(path)  # refuse a broken file before asking for a password
            password = _read_password(args.password_stdin)
            edit_users(path, lambda u: add_user(u, args.name, args.role, password))
            _audit("user.change", args.name, f"added with role {args.role}")
            sys.stdout.write(f"Added {args.name} ({args.role}).\n")
            return 0
        if args.ucmd == "set-role":
            check_role(args.role)

            def set_role(u):  # type: ignore[no-untyped-def]
                acc = u.accounts.get(args.name)
                if acc is None:
                    raise UsersFileError(f"No user {args.name!r}; see `python -m auth user list`.")
                return replace(u, accounts={**u.accounts, acc.name: replace(acc, role=args.role)})

            edit_users(path, set_role)
            _audit("user.change", args.name, f"role set to {args.role}")
            sys.stdout.write(f"{args.name} now has the {args.role} role.\n")
            return 0
        if args.ucmd == "remove":

            def remove(u):  # type: ignore[no-untyped-def]
                if args.name not in u.accounts:
                    raise UsersFileError(f"No user {args.name!r}; see `python -m auth user list`.")
                return replace(u, accounts={k: v for k, v in u.accounts.items() if k != args.name})

            edit_users(path, remove)
            _audit("user.change", args.name, "removed")
            sys.stdout.write(f"Removed {args.name}.\n")
            return 0
    if args.cmd == "allow":
        if args.acmd == "list":
            allow = load_users(path).allow
            if args.format == "json":
                sys.stdout.write(json.dumps(allow, indent=2) + "\n")
            else:
                for entry, role in sorted(allow.items()):
                    sys.stdout.write(f"{entry}\t{role}\n")
            return 0
        entry = check_allow_entry(args.entry)
        if args.acmd == "add":
            check_role(args.role)
            edit_users(path, lambda u: replace(u, allow={**u.allow, entry: args.role}))
            _audit("user.change", entry, f"allowlisted with role {args.role}")
            sys.stdout.write(f"Allowed {entry} ({args.role}).\n")
            return 0

        def unallow(u):  # type: ignore[no-untyped-def]
            if entry not in u.allow:
                raise UsersFileError(f"{entry} is not on the allowlist.")
            return replace(u, allow={k: v for k, v in u.allow.items() if k != entry})

        edit_users(path, unallow)
        _audit("user.change", entry, "removed from the allowlist")
        sys.stdout.write(f"Removed {entry} from the allowlist.\n")
        return 0
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point: refusals are one line on stderr and exit 2, never a traceback."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except UsersFileError as exc:
        sys.stderr.write(f"Refused: {exc}\n")
        return 2
    except (KeyboardInterrupt, EOFError):
        sys.stderr.write("Cancelled; nothing was changed.\n")
        return 2
