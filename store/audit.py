"""The audit trail: who did what, to what, when, from where, and how it ended. Append-only.

SQLite keeps it in a table whose rows triggers forbid to change or delete; Firestore keeps one
document per event, created (never set) so an existing event is never overwritten, and sent
through the outbox like every other record while Firestore is down.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

AUDIT_COLLECTION = "audit_log"
OUTCOMES = ("ok", "denied", "failed")

SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        id TEXT PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log(at)",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
)


@dataclass(frozen=True)
class AuditEvent:
    """One audited event. ``actor`` is the authenticated identity, never a typed name."""

    id: str
    at: float
    actor: str
    role: str
    method: str
    action: str
    target: str = ""
    outcome: str = "ok"
    detail: str = ""
    address: str = ""

    @classmethod
    def new(
        cls,
        actor: str,
        role: str,
        method: str,
        action: str,
        target: str = "",
        outcome: str = "ok",
        detail: str = "",
        address: str = "",
        at: float | None = None,
    ) -> AuditEvent:
        """An event with a fresh, sortable id, stamped now."""
        when = time.time() if at is None else at
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(when))
        return cls(
            f"audit-{stamp}-{uuid.uuid4().hex[:12]}",
            when,
            actor,
            role,
            method,
            action,
            target[:500],
            outcome,
            detail[:1000],
            address,
        )


def to_dict(event: AuditEvent) -> dict[str, Any]:
    """The event as plain values."""
    return dataclasses.asdict(event)


def from_dict(body: dict[str, Any]) -> AuditEvent:
    """An event from plain values (unknown keys ignored)."""
    names = {f.name for f in dataclasses.fields(AuditEvent)}
    return AuditEvent(**{k: v for k, v in body.items() if k in names})


def matches(
    event: AuditEvent,
    actor: str | None = None,
    action: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> bool:
    """Whether an event passes the Audit page's filters."""
    return (
        (actor is None or event.actor == actor)
        and (action is None or event.action == action)
        and (since is None or event.at >= since)
        and (until is None or event.at <= until)
    )


def sqlite_prepare(conn: sqlite3.Connection) -> None:
    """Create the audit table and its append-only triggers when they are missing."""
    for statement in SQLITE_SCHEMA:
        conn.execute(statement)


def sqlite_insert(conn: sqlite3.Connection, event: AuditEvent) -> None:
    """Insert one event (a retried insert of the same id is ignored, never a second row)."""
    conn.execute(
        "INSERT OR IGNORE INTO audit_log (id, at, actor, action, body) VALUES (?, ?, ?, ?, ?)",
        (event.id, event.at, event.actor, event.action, json.dumps(to_dict(event))),
    )


def sqlite_select(
    conn: sqlite3.Connection,
    actor: str | None = None,
    action: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events newest first, filtered in SQL."""
    sql = "SELECT body FROM audit_log WHERE 1=1"
    args: list[Any] = []
    for clause, value in (
        (" AND actor = ?", actor),
        (" AND action = ?", action),
        (" AND at >= ?", since),
        (" AND at <= ?", until),
    ):
        if value is not None:
            sql += clause
            args.append(value)
    sql += " ORDER BY at DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(int(limit))
    return [from_dict(json.loads(row[0])) for row in conn.execute(sql, args)]
