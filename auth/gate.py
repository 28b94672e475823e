"""The gate every state-changing action passes: authorize now, then record how it ended."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from auth.policy import Forbidden, Identity, authorize
from store.audit import AuditEvent
from store.base import Store, StoreError

if TYPE_CHECKING:
    from auth.users import Directory

log = logging.getLogger(__name__)


class Gate:
    """Authorization with the directory's current roles, and an audit entry for each outcome."""

    def __init__(self, store: Store, directory: Directory | None = None) -> None:
        self.store = store
        self.directory = directory

    def record(
        self,
        who: Identity | None,
        action: str,
        target: str = "",
        outcome: str = "ok",
        detail: str = "",
        *,
        name: str = "",
        address: str = "",
    ) -> None:
        """Append one audit event; a store that cannot take it is logged, never fatal here."""
        event = AuditEvent.new(
            who.name if who else (name or "(nobody)"),
            who.role if who else "",
            who.method if who else "",
            action,
            target,
            outcome,
            detail,
            address or (who.address if who else ""),
        )
        try:
            self.store.append_audit(event)
        except StoreError as exc:
            log.error("audit event %s %s by %s not stored: %s", action, outcome, event.actor, exc)

    def allow(
        self, who: Identity | None, action: str, target: str = "", owner: str | None = None
    ) -> Identity:
        """The identity as it stands now, when it may do ``action``; else Forbidden, recorded."""
        try:
            return authorize(who, action, owner=owner, directory=self.directory)
        except Forbidden as exc:
            self.record(who, action, target, "denied", str(exc))
            raise

    @contextmanager
    def action(
        self,
        who: Identity | None,
        action: str,
        target: str = "",
        owner: str | None = None,
        detail: str = "",
    ) -> Iterator[Identity]:
        """Authorize, run the body, and record ``ok`` or ``failed`` with the reason."""
        now = self.allow(who, action, target, owner)
        try:
            yield now
        except Exception as exc:
            self.record(now, action, target, "failed", f"{type(exc).__name__}: {exc}"[:500])
            raise
        self.record(now, action, target, "ok", detail)
