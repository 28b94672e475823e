"""Roles and the one authorization check every state-changing action passes where it runs.

A hidden or disabled widget is a convenience; :func:`authorize` is the control. It is called
with the authenticated identity at the moment the action runs, and asks the directory for the
identity's role *now*, so a demoted or removed account loses its rights on its next action.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from auth.users import ROLES

if TYPE_CHECKING:
    from auth.users import Directory

# The least role each action needs.
ACTIONS: dict[str, str] = {
    "read": "viewer",
    "export": "viewer",
    "scan": "analyst",
    "import": "analyst",
    "summarize": "analyst",
    "compare": "analyst",
    "verdict": "analyst",
    "cancel": "analyst",  # one's own scan; anyone else's needs cancel.any
    "outbox.send": "analyst",
    "schedule.create": "analyst",
    "delete": "admin",
    "cancel.any": "admin",
    "audit.read": "admin",
    "user.change": "admin",
    "schedule.manage": "admin",
}
METHODS = ("local", "password", "oidc")


class Forbidden(PermissionError):
    """The identity may not do this; the message says who, what and how to get the right."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not allowed"


@dataclass(frozen=True)
class Identity:
    """Who acts: an authenticated name, their role, how they logged in, and from where.

    ``local`` is the single analyst of a loopback dashboard with no login, or a command line
    run by the machine's user; both hold every right, as before roles existed.
    """

    name: str
    role: str
    method: str
    address: str = ""

    @classmethod
    def local(cls, name: str) -> Identity:
        """The machine's own user: a command line, or a loopback dashboard with no login."""
        return cls(name, "admin", "local")


def role_allows(role: str, action: str) -> bool:
    """Whether ``role`` is enough for ``action`` (an unknown action is never allowed)."""
    need = ACTIONS.get(action)
    if need is None or role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(need)


def current(identity: Identity, directory: Directory | None) -> Identity | None:
    """The identity with its role as the directory holds it now; None when it may not log in."""
    if directory is None or identity.method == "local":
        return identity
    if identity.method == "password":
        acc = directory.account(identity.name)
        return replace(identity, role=acc.role) if acc else None
    if identity.method == "oidc":
        role = directory.oidc_role(identity.name)
        return replace(identity, role=role) if role else None
    return None


def authorize(
    identity: Identity | None,
    action: str,
    *,
    owner: str | None = None,
    directory: Directory | None = None,
) -> Identity:
    """Allow ``action`` for ``identity`` now, returning its current form, or raise Forbidden.

    ``owner`` is who owns the thing acted on (a scan job): cancelling someone else's scan
    needs ``cancel.any``.
    """
    if identity is None:
        raise Forbidden("Nobody is logged in: log in first. Nothing was changed.")
    now = current(identity, directory)
    if now is None:
        raise Forbidden(
            f"The account {identity.name!r} may no longer use ScanScribe (removed, or no longer "
            "on the allowlist). Ask an admin. Nothing was changed."
        )
    if action == "cancel" and owner is not None and owner != now.name:
        action = "cancel.any"
    if not role_allows(now.role, action):
        need = ACTIONS.get(action, "admin")
        raise Forbidden(
            f"{now.name} has the {now.role} role; '{action}' needs {need}. Ask an admin to run "
            f"`python -m auth user set-role {now.name} {need}`. Nothing was changed."
        )
    return now
