"""Worker heartbeats, kept in the shared store: SQLite table or Firestore collection.

Each worker writes its own record every few seconds (site, host, scope, nmap version, root or
not, running jobs). The dashboard routes scans to the sites whose workers beat recently and
System status lists them with their age.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from config import Config
from store.base import StoreUnavailable

BEAT_EVERY_S = 2.0
# A worker silent for this long is not offered scans (several missed beats, not one slow write).
STALE_AFTER_S = 10.0
COLLECTION = "worker_heartbeats"


@dataclass(frozen=True)
class Heartbeat:
    """What one worker said about itself at ``at`` (epoch seconds)."""

    worker: str
    site: str
    host: str
    scope: tuple[str, ...]
    nmap_version: str
    root: bool
    running: int
    concurrency: int
    at: float

    def age(self, now: float | None = None) -> float:
        """Seconds since this heartbeat."""
        return max(0.0, (time.time() if now is None else now) - self.at)

    def live(self, now: float | None = None) -> bool:
        """Whether the worker beat recently enough to be given scans."""
        return self.age(now) < STALE_AFTER_S

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = asdict(self)
        d["scope"] = list(self.scope)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Heartbeat:
        """Inverse of :meth:`to_dict`; malformed values raise ValueError."""
        return cls(
            worker=str(d["worker"]),
            site=str(d["site"]),
            host=str(d["host"]),
            scope=tuple(str(s) for s in d["scope"]),
            nmap_version=str(d.get("nmap_version", "")),
            root=bool(d.get("root", False)),
            running=int(d.get("running", 0)),
            concurrency=int(d.get("concurrency", 1)),
            at=float(d["at"]),
        )


class Board(Protocol):
    """Where heartbeats are kept."""

    def beat(self, heartbeat: Heartbeat) -> None:
        """Insert or replace this worker's heartbeat."""
        ...

    def heartbeats(self) -> list[Heartbeat]:
        """Every worker's latest heartbeat, newest first."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SQLiteBoard:
    """Heartbeats in the SQLite file (every worker on this machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=5.0, check_same_thread=False)
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS worker_heartbeats "
                "(worker TEXT PRIMARY KEY, at REAL NOT NULL, body TEXT NOT NULL)"
            )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._db:
                    yield self._db
            except sqlite3.Error as exc:
                raise StoreUnavailable(
                    f"The worker heartbeats in {self.path} cannot be read or written: {exc}"
                ) from exc

    def beat(self, heartbeat: Heartbeat) -> None:
        """Insert or replace this worker's heartbeat."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO worker_heartbeats VALUES (?,?,?)",
                (heartbeat.worker, heartbeat.at, json.dumps(heartbeat.to_dict())),
            )

    def heartbeats(self) -> list[Heartbeat]:
        """Every worker's latest heartbeat, newest first."""
        with self._tx() as db:
            rows = db.execute("SELECT body FROM worker_heartbeats ORDER BY at DESC").fetchall()
        return [Heartbeat.from_dict(json.loads(r[0])) for r in rows]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


class FirestoreBoard:
    """Heartbeats in the Firestore collection ``worker_heartbeats``, one document per worker."""

    def __init__(self, client: Any, timeout_s: float) -> None:
        self._client = client
        self.timeout_s = timeout_s

    @classmethod
    def from_config(cls, cfg: Config) -> FirestoreBoard:
        """The board on the app's Firestore project (or emulator)."""
        from google.cloud import firestore

        from store.firestore import firebase_app

        app = firebase_app(cfg)
        client = firestore.Client(
            project=app.project_id, credentials=app.credential.get_credential()
        )
        # The validated configuration decides about the emulator, not os.environ.
        client._emulator_host = cfg.firestore_emulator_host
        return cls(client, cfg.firestore_timeout_s)

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        from google.api_core import exceptions as gexc

        try:
            yield
        except (gexc.GoogleAPIError, OSError) as exc:
            raise StoreUnavailable(
                f"Firestore did not answer while trying to {what}: {type(exc).__name__}."
            ) from exc

    def beat(self, heartbeat: Heartbeat) -> None:
        """Insert or replace this worker's heartbeat."""
        doc_id = heartbeat.worker.replace("/", "_")
        with self._translate("save a worker heartbeat"):
            self._client.collection(COLLECTION).document(doc_id).set(
                heartbeat.to_dict(), timeout=self.timeout_s
            )

    def heartbeats(self) -> list[Heartbeat]:
        """Every worker's latest heartbeat, newest first."""
        with self._translate("read the worker heartbeats"):
            docs = list(self._client.collection(COLLECTION).stream(timeout=self.timeout_s))
        beats = [Heartbeat.from_dict(d.to_dict()) for d in docs]
        return sorted(beats, key=lambda b: b.at, reverse=True)

    def close(self) -> None:
        """Close the client."""
        self._client.close()


def open_board(cfg: Config) -> Board:
    """The heartbeat board beside the store ``cfg`` selects."""
    if cfg.store == "firestore":
        return FirestoreBoard.from_config(cfg)
    return SQLiteBoard(cfg.db_path)
