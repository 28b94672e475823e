"""Where imported feeds are kept: a Protocol, and its SQLite form in ScanScribe's own file.

The tables are named ``feeds_*`` and live in the same file as the reports (``SCANSCRIBE_DB``),
created when missing. An NVD file replaces the CVEs it holds (and their ranges); the KEV
catalog is a whole list, so importing it replaces the previous one. Each import is one
transaction: it is kept whole or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Protocol

from feeds.match import Product
from feeds.models import CpeRange, CveRecord, FeedImport
from feeds.parse import Feed
from store.base import StoreUnavailable
from store.sqlite import ensure_folder

BUSY_TIMEOUT_S = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds_cves (
    id TEXT PRIMARY KEY,
    cvss REAL,
    published TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feeds_ranges (
    cve_id TEXT NOT NULL,
    part TEXT NOT NULL,
    vendor TEXT NOT NULL,
    product TEXT NOT NULL,
    version TEXT NOT NULL,
    start_incl TEXT NOT NULL,
    start_excl TEXT NOT NULL,
    end_incl TEXT NOT NULL,
    end_excl TEXT NOT NULL,
    criteria TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feeds_ranges_product ON feeds_ranges(vendor, product);
CREATE INDEX IF NOT EXISTS feeds_ranges_cve ON feeds_ranges(cve_id);
CREATE TABLE IF NOT EXISTS feeds_kev (
    cve_id TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    product TEXT NOT NULL,
    name TEXT NOT NULL,
    date_added TEXT NOT NULL,
    due_date TEXT NOT NULL,
    ransomware TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feeds_imports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    count INTEGER NOT NULL,
    imported_at REAL NOT NULL
);
"""


class FeedStore(Protocol):
    """What ``feeds import``/``status`` and the matching need kept. SQLite and Firestore."""

    def import_feed(self, feed: Feed, name: str, now: float) -> FeedImport:
        """Keep a checked feed file, all or nothing."""
        ...

    def imports(self) -> list[FeedImport]:
        """Every import, newest first."""
        ...

    def counts(self) -> dict[str, int]:
        """How many CVEs, ranges and known-exploited entries are kept."""
        ...

    def ranges_for(self, products: Iterable[Product]) -> list[CpeRange]:
        """Every vulnerable range of these (part, vendor, product) triples."""
        ...

    def cves(self, ids: Iterable[str]) -> dict[str, CveRecord]:
        """The stored CVEs among ``ids`` (without their ranges)."""
        ...

    def known_exploited(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` in the Known Exploited Vulnerabilities catalog."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SQLiteFeedStore:
    """The feeds in ScanScribe's SQLite file; a connection per call, so any thread may use it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        ensure_folder(self.path)
        with self._tx() as conn:
            conn.executescript(SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            # The inner ``conn`` commits, or rolls back on any error; closing() then closes it.
            with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as conn, conn:
                yield conn
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"The database {self.path} failed ({exc}). No feed was changed; check "
                "SCANSCRIBE_DB and the disk, then try again."
            ) from exc

    def import_feed(self, feed: Feed, name: str, now: float) -> FeedImport:
        """Keep a checked feed file in one transaction."""
        with self._tx() as conn:
            if feed.kind == "nvd":
                ids = [(c.id,) for c in feed.cves]
                conn.executemany("DELETE FROM feeds_ranges WHERE cve_id = ?", ids)
                conn.executemany(
                    "INSERT OR REPLACE INTO feeds_cves VALUES (?, ?, ?, ?)",
                    ((c.id, c.cvss, c.published, c.description) for c in feed.cves),
                )
                conn.executemany(
                    "INSERT INTO feeds_ranges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (r.cve_id, r.part, r.vendor, r.product, r.version, r.start_incl,
                         r.start_excl, r.end_incl, r.end_excl, r.criteria)
                        for c in feed.cves
                        for r in c.ranges
                    ),
                )  # fmt: skip
            else:
                conn.execute("DELETE FROM feeds_kev")
                conn.executemany(
                    "INSERT OR REPLACE INTO feeds_kev VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        (k.cve_id, k.vendor, k.product, k.name, k.date_added, k.due_date,
                         k.ransomware)
                        for k in feed.kev
                    ),
                )  # fmt: skip
            done = FeedImport(feed.kind, name, feed.version, feed.count, now)
            conn.execute(
                "INSERT INTO feeds_imports (kind, name, version, count, imported_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (done.kind, done.name, done.version, done.count, done.imported_at),
            )
        return done

    def imports(self) -> list[FeedImport]:
        """Every import, newest first."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT kind, name, version, count, imported_at FROM feeds_imports "
                "ORDER BY seq DESC"
            ).fetchall()
        return [FeedImport(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many CVEs, ranges and known-exploited entries are kept."""
        with self._tx() as conn:
            return {
                "cves": conn.execute("SELECT COUNT(*) FROM feeds_cves").fetchone()[0],
                "ranges": conn.execute("SELECT COUNT(*) FROM feeds_ranges").fetchone()[0],
                "kev": conn.execute("SELECT COUNT(*) FROM feeds_kev").fetchone()[0],
            }

    def ranges_for(self, products: Iterable[Product]) -> list[CpeRange]:
        """Every vulnerable range of these (part, vendor, product) triples."""
        out: list[CpeRange] = []
        with self._tx() as conn:
            for part, vendor, product in set(products):
                rows = conn.execute(
                    "SELECT cve_id, part, vendor, product, version, start_incl, start_excl, "
                    "end_incl, end_excl, criteria FROM feeds_ranges "
                    "WHERE vendor = ? AND product = ? AND part = ?",
                    (vendor, product, part),
                ).fetchall()
                out += [CpeRange(*row) for row in rows]
        return out

    def cves(self, ids: Iterable[str]) -> dict[str, CveRecord]:
        """The stored CVEs among ``ids`` (without their ranges)."""
        out: dict[str, CveRecord] = {}
        with self._tx() as conn:
            for cve_id in set(ids):
                row = conn.execute(
                    "SELECT id, cvss, published, description FROM feeds_cves WHERE id = ?",
                    (cve_id,),
                ).fetchone()
                if row is not None:
                    out[cve_id] = CveRecord(*row)
        return out

    def known_exploited(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` in the Known Exploited Vulnerabilities catalog."""
        with self._tx() as conn:
            return {
                cve_id
                for cve_id in set(ids)
                if conn.execute("SELECT 1 FROM feeds_kev WHERE cve_id = ?", (cve_id,)).fetchone()
            }

    def close(self) -> None:
        """Nothing is held between calls."""
