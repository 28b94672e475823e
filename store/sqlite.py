"""The embedded store: one SQLite file in WAL mode, a versioned schema, a transaction a write."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from scanner.models import Report, ReportSummary
from store import audit
from store.audit import AuditEvent
from store.base import NotFound, StoreUnavailable
from store.identity import HostIdentity, this_host
from store.records import Comparison, Job, Summary
from store.serialize import (
    hosts_from_json,
    hosts_to_json,
    record_from_dict,
    record_to_dict,
    report_from_meta,
    report_meta,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R", Job, Summary, Comparison)

BUSY_TIMEOUT_MS = 5000
PAGE_SIZE = 16384

# Each entry moves the schema one version up; PRAGMA user_version records where a file stands.
# reports.hosts is JSON: new rows hold it as UTF-8 bytes (a BLOB), rows of older files as text.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE reports (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        meta TEXT NOT NULL,
        hosts TEXT NOT NULL,
        hosts_total INTEGER NOT NULL,
        hosts_up INTEGER NOT NULL,
        open_ports INTEGER NOT NULL
    );
    CREATE INDEX reports_created ON reports(created_at);
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE TABLE summaries (
        id TEXT PRIMARY KEY,
        report_id TEXT NOT NULL,
        base_report_id TEXT,
        created_at REAL NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX summaries_report ON summaries(report_id);
    CREATE TABLE comparisons (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        body TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    """,
    """
    CREATE TABLE report_cache (
        id TEXT PRIMARY KEY,
        read_at REAL NOT NULL,
        meta TEXT NOT NULL,
        digest TEXT NOT NULL,
        hosts BLOB NOT NULL
    );
    CREATE INDEX report_cache_read ON report_cache(read_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
# An outbox row whose last error starts with this is parked: no longer retried automatically.
PARKED = "parked: "
# How many reports read from a remote backend are kept on this machine for an outage.
REPORT_CACHE_SIZE = 20


def _translate(exc: sqlite3.Error, path: Path) -> StoreUnavailable:
    """Turn a sqlite3 error into a message that says what happened and what to do."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        msg = (
            f"The database {path} is locked by another program and stayed locked for "
            f"{BUSY_TIMEOUT_MS // 1000} s. Close the other program or wait, then try again; "
            "nothing was saved."
        )
    elif "full" in text:
        msg = f"The disk holding {path} is full. Free some space and try again; nothing was saved."
    elif "readonly" in text or "read-only" in text:
        msg = f"The database {path} is read-only. Make it writable; nothing was saved."
    elif "unable to open" in text:
        msg = f"The database {path} cannot be opened. Check SCANSCRIBE_DB and the folder's rights."
    else:
        msg = f"The database {path} failed ({exc}). Nothing was saved."
    return StoreUnavailable(msg)


def ensure_folder(path: Path) -> None:
    """Create the folder of a SQLite file, or StoreUnavailable saying which setting to change."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"Cannot create the folder for {path}: {exc.strerror}. "
            "Set SCANSCRIBE_DB to a writable path."
        ) from exc


@contextmanager
def immediate(
    conn: sqlite3.Connection, translate: Callable[[sqlite3.Error], StoreUnavailable]
) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``conn``: all of it lands or none of it does.

    sqlite3 errors leave as ``translate(exc)``, which says what happened and what to do.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            # SQLite has already rolled back after some errors (SQLITE_FULL among them).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise translate(exc) from exc


class SQLiteStore:
    """The default Store: a local SQLite file, safe for several sessions and processes."""

    backend = "sqlite"

    def __init__(self, path: Path | str, host: HostIdentity | None = None) -> None:
        self.path = Path(path)
        # The machine and boot this handle runs on, recorded with jobs and summaries.
        self.host = host or this_host(self.path.parent)
        self._local = threading.local()
        ensure_folder(self.path)
        self._migrate()

    # -- connections -------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
                )
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                # Larger pages for a new file (no effect on an existing one): a report's hosts
                # are one multi-megabyte value, and 16 KiB pages write it in a quarter of the
                # page chain (and of the WAL frames) that the 4 KiB default needs.
                conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands or none of it does."""
        with immediate(self._conn(), lambda exc: _translate(exc, self.path)) as conn:
            yield conn

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._conn())
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _migrate(self) -> None:
        with self._tx() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"The database {self.path} was written by a newer ScanScribe (schema "
                    f"{version}, this one knows {SCHEMA_VERSION}). Upgrade ScanScribe."
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                log.info("migrated %s to schema %d", self.path, step + 1)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- status ------------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the data lives."""
        return f"SQLite file {self.path}"

    def health(self) -> dict[str, Any]:
        """Whether the file answers, with its path and schema version."""
        try:
            version = self._read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
            return {"ok": True, "backend": "sqlite", "path": str(self.path), "schema": version}
        except StoreUnavailable as exc:
            return {"ok": False, "backend": "sqlite", "path": str(self.path), "error": str(exc)}

    def schema_version(self) -> int:
        """The schema version of the file."""
        return int(self._read(lambda c: c.execute("PRAGMA user_version").fetchone()[0]))

    # -- reports -----------------------------------------------------------------------------
    def save_report(self, report: Report) -> None:
        """Insert or replace a report with its hosts in one transaction."""
        created = report.created_at or time.time()
        meta = report_meta(report)
        meta["created_at"] = created
        hosts = hosts_to_json(report.hosts)
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO reports VALUES (?,?,?,?,?,?,?)",
                (
                    report.id,
                    created,
                    json.dumps(meta),
                    hosts,
                    len(report.hosts),
                    report.hosts_up,
                    report.open_port_count,
                ),
            )

    def get_report(self, report_id: str) -> Report:
        """The whole report."""
        row = self._read(
            lambda c: c.execute(
                "SELECT meta, hosts FROM reports WHERE id=?", (report_id,)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"No report with id {report_id!r}.")
        return report_from_meta(json.loads(row[0]), hosts_from_json(row[1]))

    def list_reports(self, limit: int | None = None) -> list[ReportSummary]:
        """History rows, newest scan first, with how many summaries each has.

        Ordered by when each scan ran (nmap's start time in the metadata), not when it was
        saved: a file imported today of a 2016 scan sorts among the 2016 reports.
        """
        sql = (
            "SELECT r.meta, r.hosts_total, r.hosts_up, r.open_ports, "
            "(SELECT COUNT(*) FROM summaries s WHERE s.report_id = r.id) "
            "FROM reports r ORDER BY "
            "COALESCE(NULLIF(json_extract(r.meta, '$.started_at'), 0), r.created_at) DESC, "
            "r.id DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._read(lambda c: c.execute(sql).fetchall())
        out = []
        for meta_text, total, up, open_ports, n_summaries in rows:
            meta = json.loads(meta_text)
            out.append(
                ReportSummary(
                    id=meta["id"],
                    targets=tuple(meta.get("targets", ())),
                    profile=meta.get("profile", ""),
                    source=meta.get("source", ""),
                    created_at=float(meta.get("created_at") or 0.0),
                    started_at=meta.get("started_at"),
                    finished_at=meta.get("finished_at"),
                    hosts_total=total,
                    hosts_up=up,
                    open_ports=open_ports,
                    complete=bool(meta.get("complete", True)),
                    owner=meta.get("owner", ""),
                    summaries=n_summaries,
                )
            )
        return out

    def delete_report(self, report_id: str) -> None:
        """Remove a report and its summaries."""
        with self._tx() as conn:
            cur = conn.execute("DELETE FROM reports WHERE id=?", (report_id,))
            if cur.rowcount == 0:
                raise NotFound(f"No report with id {report_id!r}.")
            # A diff summary whose base is gone could no longer be checked: it goes too.
            conn.execute(
                "DELETE FROM summaries WHERE report_id=? OR base_report_id=?",
                (report_id, report_id),
            )

    # -- generic records ---------------------------------------------------------------------
    def _get(self, table: str, cls: type[R], rec_id: str, what: str) -> R:
        row = self._read(
            # table is one of this module's own names, never user input
            lambda c: c.execute(f"SELECT body FROM {table} WHERE id=?", (rec_id,)).fetchone()  # noqa: S608
        )
        if row is None:
            raise NotFound(f"No {what} with id {rec_id!r}.")
        return record_from_dict(cls, json.loads(row[0]))

    def _list(self, cls: type[R], sql: str, params: tuple[Any, ...] = ()) -> list[R]:
        rows = self._read(lambda c: c.execute(sql, params).fetchall())
        return [record_from_dict(cls, json.loads(r[0])) for r in rows]

    # -- jobs --------------------------------------------------------------------------------
    def save_job(self, job: Job) -> None:
        """Insert or replace a job."""
        body = json.dumps(record_to_dict(job))
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?)",
                (job.id, job.created_at, job.status, body),
            )

    def get_job(self, job_id: str) -> Job:
        """One job."""
        return self._get("jobs", Job, job_id, "scan job")

    def list_jobs(
        self, statuses: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[Job]:
        """Jobs, newest first."""
        sql = "SELECT body FROM jobs"
        params: tuple[Any, ...] = ()
        if statuses:
            sql += f" WHERE status IN ({','.join('?' * len(statuses))})"
            params = tuple(statuses)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._list(Job, sql, params)

    # -- summaries ---------------------------------------------------------------------------
    def save_summary(self, summary: Summary) -> None:
        """Insert or replace a summary."""
        body = json.dumps(record_to_dict(summary))
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO summaries VALUES (?,?,?,?,?,?)",
                (
                    summary.id,
                    summary.report_id,
                    summary.base_report_id,
                    summary.created_at,
                    summary.status,
                    body,
                ),
            )

    def get_summary(self, summary_id: str) -> Summary:
        """One summary."""
        return self._get("summaries", Summary, summary_id, "summary")

    def list_summaries(self, report_id: str | None = None) -> list[Summary]:
        """Summaries, newest first."""
        if report_id is None:
            return self._list(Summary, "SELECT body FROM summaries ORDER BY created_at DESC")
        return self._list(
            Summary,
            "SELECT body FROM summaries WHERE report_id=? OR base_report_id=? "
            "ORDER BY created_at DESC",
            (report_id, report_id),
        )

    # -- comparisons -------------------------------------------------------------------------
    def save_comparison(self, comparison: Comparison) -> None:
        """Insert or replace a comparison."""
        body = json.dumps(record_to_dict(comparison))
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO comparisons VALUES (?,?,?)",
                (comparison.id, comparison.created_at, body),
            )

    def get_comparison(self, comparison_id: str) -> Comparison:
        """One comparison."""
        return self._get("comparisons", Comparison, comparison_id, "comparison")

    def list_comparisons(self) -> list[Comparison]:
        """Comparisons, newest first."""
        return self._list(Comparison, "SELECT body FROM comparisons ORDER BY created_at DESC")

    # -- copies of reports read from a remote backend, for when it is unreachable ----------------
    def cache_report(self, report: Report, keep: int = REPORT_CACHE_SIZE) -> None:
        """Keep a copy of a remote report; only the ``keep`` most recently read stay."""
        meta = json.dumps(report_meta(report))
        hosts = hosts_to_json(report.hosts)
        digest = hashlib.sha256(meta.encode() + b"\0" + hosts).hexdigest()
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT digest FROM report_cache WHERE id=?", (report.id,)
            ).fetchone()
            if row is not None and row[0] == digest:
                # The same report read again: only its place in the queue moves.
                conn.execute("UPDATE report_cache SET read_at=? WHERE id=?", (now, report.id))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO report_cache VALUES (?,?,?,?,?)",
                    (report.id, now, meta, digest, hosts),
                )
            conn.execute(
                "DELETE FROM report_cache WHERE id NOT IN "
                "(SELECT id FROM report_cache ORDER BY read_at DESC LIMIT ?)",
                (keep,),
            )

    def cached_report(self, report_id: str) -> Report | None:
        """The kept copy of a remote report, or None."""
        row = self._read(
            lambda c: c.execute(
                "SELECT meta, hosts FROM report_cache WHERE id=?", (report_id,)
            ).fetchone()
        )
        if row is None:
            return None
        return report_from_meta(json.loads(row[0]), hosts_from_json(row[1]))

    def drop_cached_report(self, report_id: str) -> None:
        """Forget the kept copy of a report (it was deleted or is gone remotely)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM report_cache WHERE id=?", (report_id,))

    # -- outbox (records waiting for a remote backend) ------------------------------------------
    def outbox_put(self, item_id: str, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        """Keep a record that could not reach the remote backend, replacing an older copy."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO outbox (id, kind, doc_id, body, created_at) "
                "VALUES (?,?,?,?,?)",
                (item_id, kind, doc_id, json.dumps(body), time.time()),
            )

    def outbox_items(self) -> list[tuple[str, str, str, dict[str, Any], int]]:
        """Pending records, oldest first: (id, kind, doc_id, body, attempts)."""
        rows = self._read(
            lambda c: c.execute(
                "SELECT id, kind, doc_id, body, attempts FROM outbox ORDER BY created_at"
            ).fetchall()
        )
        return [(i, k, d, json.loads(b), a) for i, k, d, b, a in rows]

    def outbox_done(self, item_id: str) -> None:
        """Forget a record that reached the remote backend."""
        with self._tx() as conn:
            conn.execute("DELETE FROM outbox WHERE id=?", (item_id,))

    def outbox_park(self, item_id: str, error: str) -> None:
        """Stop retrying a pending record the remote backend refuses; it stays kept here."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE outbox SET last_error=? WHERE id=?",
                (PARKED + error[:500], item_id),
            )

    def outbox_parked(self) -> dict[str, str]:
        """Parked records: id to the error that parked it. A newer copy put unparks a record."""
        rows = self._read(
            lambda c: c.execute(
                "SELECT id, last_error FROM outbox WHERE last_error LIKE ?", (PARKED + "%",)
            ).fetchall()
        )
        return {i: e[len(PARKED) :] for i, e in rows}

    def outbox_failed(self, item_id: str, error: str) -> None:
        """Count a failed attempt to send a pending record."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error=? WHERE id=?",
                (error[:500], item_id),
            )

    # -- the audit trail (append-only) -------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> None:
        """Add one event to the audit trail; rows are never changed or deleted."""
        with self._tx() as conn:
            audit.sqlite_prepare(conn)
            audit.sqlite_insert(conn, event)

    def list_audit(
        self,
        actor: str | None = None,
        action: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events, newest first, filtered by who, what and when."""
        if not getattr(self, "_audit_ready", False):
            with self._tx() as conn:
                audit.sqlite_prepare(conn)
            self._audit_ready = True
        return self._read(lambda c: audit.sqlite_select(c, actor, action, since, until, limit))

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
