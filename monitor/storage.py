"""Where schedules, runs, alerts and deliveries are kept: a Protocol, and its SQLite form.

The SQLite tables live in the same file as the rest of ScanScribe (``SCANSCRIBE_DB``) under names
of their own (``monitor_*``), created when missing. A slot is claimed by inserting its run: the
run id is ``schedule@due-ms`` and ``(schedule_id, due_ms)`` is unique, so of several schedulers
racing for one slot exactly one insert lands.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from monitor.models import Alert, Delivery, Run, Schedule, from_dict, to_json
from store.base import NotFound, StoreUnavailable
from store.sqlite import ensure_folder, immediate

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000

SCHEMA = """
CREATE TABLE IF NOT EXISTS monitor_schedules (
    id TEXT PRIMARY KEY,
    active INTEGER NOT NULL,
    next_run REAL NOT NULL,
    created_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_schedules_due ON monitor_schedules(active, next_run);
CREATE TABLE IF NOT EXISTS monitor_runs (
    id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (schedule_id, due_ms)
);
CREATE INDEX IF NOT EXISTS monitor_runs_status ON monitor_runs(status);
CREATE TABLE IF NOT EXISTS monitor_alerts (
    id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    read INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_alerts_read ON monitor_alerts(read);
CREATE TABLE IF NOT EXISTS monitor_deliveries (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    status TEXT NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_deliveries_due ON monitor_deliveries(status, next_attempt_at);
"""


class MonitorStore(Protocol):
    """What the scheduler, the command line and the pages need kept. SQLite and Firestore."""

    def save_schedule(self, schedule: Schedule) -> None:
        """Insert or replace a schedule."""
        ...

    def get_schedule(self, schedule_id: str) -> Schedule:
        """One schedule, or NotFound."""
        ...

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, oldest first."""
        ...

    def due_schedules(self, now: float) -> list[Schedule]:
        """Active schedules whose next run is at or before ``now``."""
        ...

    def advance(self, schedule_id: str, next_run: float) -> None:
        """Move a schedule's next run forward to ``next_run`` (never backward)."""
        ...

    def delete_schedule(self, schedule_id: str) -> None:
        """Remove a schedule (its runs and alerts stay as history), or NotFound."""
        ...

    def claim_run(self, run: Run) -> bool:
        """Insert ``run`` unless its slot is taken; True when this call claimed it."""
        ...

    def save_run(self, run: Run) -> None:
        """Update a claimed run."""
        ...

    def get_run(self, run_id: str) -> Run:
        """One run, or NotFound."""
        ...

    def list_runs(self, schedule_id: str | None = None, status: str | None = None) -> list[Run]:
        """Runs, newest slot first; of one schedule, or in one status, when given."""
        ...

    def save_alert(self, alert: Alert, deliveries: list[Delivery]) -> None:
        """Keep an alert and its deliveries, all or nothing."""
        ...

    def get_alert(self, alert_id: str) -> Alert:
        """One alert, or NotFound."""
        ...

    def list_alerts(self, limit: int | None = None) -> list[Alert]:
        """Alerts, newest first."""
        ...

    def mark_read(self, alert_ids: list[str], read: bool = True) -> None:
        """Mark alerts read (or unread) in the app."""
        ...

    def unread_count(self) -> int:
        """How many alerts nobody has read in the app."""
        ...

    def list_deliveries(self, alert_id: str | None = None) -> list[Delivery]:
        """Deliveries, of one alert when given."""
        ...

    def due_deliveries(self, now: float) -> list[Delivery]:
        """Pending deliveries whose next attempt is due."""
        ...

    def lease_delivery(self, delivery_id: str, owner: str, now: float, until: float) -> bool:
        """Take a due delivery for ``owner`` until ``until``; False if someone else holds it."""
        ...

    def save_delivery(self, delivery: Delivery) -> None:
        """Record a delivery's attempts and state, and release its lease."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SQLiteMonitorStore:
    """The monitor's records in ScanScribe's SQLite file, safe for several processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        ensure_folder(self.path)
        with self._tx() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    # -- plumbing ----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from exc
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        return StoreUnavailable(
            f"The database {self.path} failed ({exc}). Nothing was saved; check SCANSCRIBE_DB, "
            "the disk and other programs holding the file, then try again."
        )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with immediate(self._conn(), self._unavailable) as conn:
            yield conn

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._conn())
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def _bodies(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        rows = self._read(lambda c: c.execute(sql, params).fetchall())
        return [json.loads(r[0]) for r in rows]

    def _one(self, sql: str, rec_id: str, what: str) -> dict[str, Any]:
        rows = self._bodies(sql, (rec_id,))
        if not rows:
            raise NotFound(f"No {what} with id {rec_id!r}.")
        return rows[0]

    # -- schedules ---------------------------------------------------------------------------
    def save_schedule(self, schedule: Schedule) -> None:
        """Insert or replace a schedule."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO monitor_schedules VALUES (?,?,?,?,?)",
                (
                    schedule.id,
                    int(schedule.active),
                    schedule.next_run,
                    schedule.created_at,
                    to_json(schedule),
                ),
            )

    def get_schedule(self, schedule_id: str) -> Schedule:
        """One schedule, or NotFound."""
        body = self._one("SELECT body FROM monitor_schedules WHERE id=?", schedule_id, "schedule")
        return self._schedule(body)

    @staticmethod
    def _schedule(body: dict[str, Any]) -> Schedule:
        return from_dict(Schedule, body)

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, oldest first."""
        sql = "SELECT body FROM monitor_schedules ORDER BY created_at, id"
        return [self._schedule(b) for b in self._bodies(sql)]

    def due_schedules(self, now: float) -> list[Schedule]:
        """Active schedules whose next run is at or before ``now``."""
        # The columns are the truth for active and next_run; the body may lag behind advance().
        sql = (
            "SELECT body, active, next_run FROM monitor_schedules "
            "WHERE active=1 AND next_run<=? ORDER BY next_run"
        )
        rows = self._read(lambda c: c.execute(sql, (now,)).fetchall())
        out = []
        for body, active, next_run in rows:
            data = json.loads(body)
            data.update(active=bool(active), next_run=next_run)
            out.append(self._schedule(data))
        return out

    def advance(self, schedule_id: str, next_run: float) -> None:
        """Move the next run forward; a slower scheduler's older value never wins."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT body FROM monitor_schedules WHERE id=? AND next_run<?",
                (schedule_id, next_run),
            ).fetchone()
            if row is None:
                return
            body = json.loads(row[0])
            body["next_run"] = next_run
            conn.execute(
                "UPDATE monitor_schedules SET next_run=?, body=? WHERE id=?",
                (next_run, json.dumps(body, sort_keys=True), schedule_id),
            )

    def delete_schedule(self, schedule_id: str) -> None:
        """Remove a schedule; its runs and alerts stay as history."""
        with self._tx() as conn:
            cur = conn.execute("DELETE FROM monitor_schedules WHERE id=?", (schedule_id,))
            if cur.rowcount == 0:
                raise NotFound(f"No schedule with id {schedule_id!r}.")

    # -- runs --------------------------------------------------------------------------------
    def claim_run(self, run: Run) -> bool:
        """Insert the run unless the slot is taken (the unique key decides, atomically)."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO monitor_runs VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                (run.id, run.schedule_id, round(run.due_at * 1000), run.status, to_json(run)),
            )
            return cur.rowcount == 1

    def save_run(self, run: Run) -> None:
        """Update a claimed run."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE monitor_runs SET status=?, body=? WHERE id=?",
                (run.status, to_json(run), run.id),
            )

    def get_run(self, run_id: str) -> Run:
        """One run, or NotFound."""
        return from_dict(Run, self._one("SELECT body FROM monitor_runs WHERE id=?", run_id, "run"))

    def list_runs(self, schedule_id: str | None = None, status: str | None = None) -> list[Run]:
        """Runs, newest slot first."""
        where, params = [], []
        if schedule_id is not None:
            where.append("schedule_id=?")
            params.append(schedule_id)
        if status is not None:
            where.append("status=?")
            params.append(status)
        sql = "SELECT body FROM monitor_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY due_ms DESC, id DESC"
        return [from_dict(Run, b) for b in self._bodies(sql, tuple(params))]

    # -- alerts ------------------------------------------------------------------------------
    def save_alert(self, alert: Alert, deliveries: list[Delivery]) -> None:
        """Keep the alert and its deliveries in one transaction."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO monitor_alerts VALUES (?,?,?,?,?)",
                (alert.id, alert.schedule_id, alert.created_at, int(alert.read), to_json(alert)),
            )
            for d in deliveries:
                conn.execute(
                    "INSERT OR IGNORE INTO monitor_deliveries "
                    "(id, alert_id, status, next_attempt_at, body) VALUES (?,?,?,?,?)",
                    (d.id, d.alert_id, d.status, d.next_attempt_at, to_json(d)),
                )

    def _alert(self, body: str, read: int) -> Alert:
        data = json.loads(body)
        data["read"] = bool(read)
        return from_dict(Alert, data)

    def get_alert(self, alert_id: str) -> Alert:
        """One alert, or NotFound."""
        row = self._read(
            lambda c: c.execute(
                "SELECT body, read FROM monitor_alerts WHERE id=?", (alert_id,)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"No alert with id {alert_id!r}.")
        return self._alert(row[0], row[1])

    def list_alerts(self, limit: int | None = None) -> list[Alert]:
        """Alerts, newest first."""
        sql = "SELECT body, read FROM monitor_alerts ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._read(lambda c: c.execute(sql).fetchall())
        return [self._alert(b, r) for b, r in rows]

    def mark_read(self, alert_ids: list[str], read: bool = True) -> None:
        """Mark alerts read or unread."""
        with self._tx() as conn:
            conn.executemany(
                "UPDATE monitor_alerts SET read=? WHERE id=?", [(int(read), i) for i in alert_ids]
            )

    def unread_count(self) -> int:
        """How many alerts nobody has read."""
        sql = "SELECT COUNT(*) FROM monitor_alerts WHERE read=0"
        return int(self._read(lambda c: c.execute(sql).fetchone()[0]))

    # -- deliveries --------------------------------------------------------------------------
    def list_deliveries(self, alert_id: str | None = None) -> list[Delivery]:
        """Deliveries, of one alert when given."""
        if alert_id is None:
            rows = self._bodies("SELECT body FROM monitor_deliveries ORDER BY id")
        else:
            rows = self._bodies(
                "SELECT body FROM monitor_deliveries WHERE alert_id=? ORDER BY id", (alert_id,)
            )
        return [from_dict(Delivery, b) for b in rows]

    def due_deliveries(self, now: float) -> list[Delivery]:
        """Pending deliveries whose next attempt is due and that nobody holds."""
        rows = self._bodies(
            "SELECT body FROM monitor_deliveries WHERE status='pending' AND next_attempt_at<=? "
            "AND lease_until<? ORDER BY next_attempt_at",
            (now, now),
        )
        return [from_dict(Delivery, b) for b in rows]

    def lease_delivery(self, delivery_id: str, owner: str, now: float, until: float) -> bool:
        """Take the delivery unless another scheduler holds an unexpired lease on it."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE monitor_deliveries SET lease_until=?, lease_owner=? "
                "WHERE id=? AND status='pending' AND lease_until<?",
                (until, owner, delivery_id, now),
            )
            return cur.rowcount == 1

    def save_delivery(self, delivery: Delivery) -> None:
        """Record the delivery and release its lease."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE monitor_deliveries SET status=?, next_attempt_at=?, lease_until=0, "
                "lease_owner='', body=? WHERE id=?",
                (delivery.status, delivery.next_attempt_at, to_json(delivery), delivery.id),
            )

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
