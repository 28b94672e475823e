"""Access control: accounts and roles, logins and sessions, throttling, and the audit gate.

Served on loopback with no login, the dashboard is one analyst's, as before. Served beyond
loopback it fails closed until a login method is configured: password accounts in the users
file (``SCANSCRIBE_USERS``, managed with ``python -m auth user ...``), the single admin of
``SCANSCRIBE_PASSWORD_HASH``, or Streamlit's OIDC (``st.login``) with an allowlist. Every
state-changing action passes :func:`auth.policy.authorize` where it runs (:class:`Gate`).
"""

from __future__ import annotations

from auth.gate import Gate
from auth.net import host_header_allowed, is_loopback
from auth.passwords import hash_password, verify_password
from auth.policy import ACTIONS, Forbidden, Identity, authorize, role_allows
from auth.sessions import COOKIE, SessionStore
from auth.throttle import Throttle
from auth.users import ROLES, Directory, UsersFileError

__all__ = [
    "ACTIONS",
    "COOKIE",
    "ROLES",
    "Directory",
    "Forbidden",
    "Gate",
    "Identity",
    "SessionStore",
    "Throttle",
    "UsersFileError",
    "authorize",
    "hash_password",
    "host_header_allowed",
    "is_loopback",
    "role_allows",
    "verify_password",
]
