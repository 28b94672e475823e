"""The Firestore store: reports, jobs, summaries and comparisons kept in Cloud Firestore.

Collections::

    scans/{report_id}                      report metadata, counts, which host chunks to read
    scans/{report_id}/host_chunks/{gen-n}  the hosts as pieces of one JSON text (<= 256 KiB each)
    scan_jobs/{job_id}
    executive_summaries/{summary_id}
    model_comparisons/{comparison_id}

Every document id is chosen by the app, so a retried write lands on the same document. Every
call has a timeout and a bounded retry; the client's default retry waits about a minute on an
unreachable server. A write that cannot reach Firestore is kept in the SQLite outbox and sent
later (:meth:`FirestoreStore.sync_outbox`), so nothing is lost while the network is down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from config import Config, ConfigError
from scanner.models import Report, ReportSummary
from store import audit
from store.audit import AuditEvent
from store.base import NotFound, StoreError, StoreUnavailable
from store.records import Comparison, Job, Summary
from store.serialize import (
    hosts_from_json,
    hosts_to_json,
    record_from_dict,
    record_to_dict,
    report_from_dict,
    report_from_meta,
    report_meta,
    report_to_dict,
)

if TYPE_CHECKING:
    from store.sqlite import SQLiteStore

log = logging.getLogger(__name__)
R = TypeVar("R", Job, Summary, Comparison)
T = TypeVar("T")

SCANS = "scans"
HOST_CHUNKS = "host_chunks"
JOBS = "scan_jobs"
SUMMARIES = "executive_summaries"
COMPARISONS = "model_comparisons"

# Firestore refuses documents over 1 MiB and requests over 10 MiB, and allows 500 writes per
# commit; emulators often accept only 4 MiB per message. These bounds stay well inside all of it.
CHUNK_BYTES = 256 * 1024
BATCH_MAX_WRITES = 500
BATCH_MAX_BYTES = 2 * 1024 * 1024
IN_QUERY_MAX = 30
# A write or read gives up after this long in total, however many attempts that took.
RETRY_DEADLINE_S = 3.0
# After a failure, calls go straight to the outbox (writes) or fail at once (reads) for this
# long, so a page that saves every second does not wait out a timeout on every save.
OFFLINE_BACKOFF_S = 15.0
HEALTH_TIMEOUT_S = 3.0
DEFAULT_EMULATOR_PROJECT = "demo-scanscribe"
APP_PREFIX = "scanscribe"

# Each write carries when its record was saved (seconds since the epoch, strictly increasing
# per process); a write never replaces a document saved later by any process or machine.
WRITTEN_AT = "written_at"
# A record whose document would pass this size is kept as JSON text in pieces under
# {doc}/parts, its top document holding only its small fields (what queries filter and sort on).
INLINE_MAX_BYTES = 512 * 1024
PARTS = "parts"
# A report's free-text metadata (nmap's args, a note) longer than this is cut, with a note.
META_TEXT_MAX = 64 * 1024
# A background pass sends what waits in the outbox this often, until nothing (but parked
# records) waits.
FLUSH_EVERY_S = 30.0
# An outbox record Firestore answered with a refusal this many times is parked: kept locally,
# shown in System status, no longer retried automatically, and never in the way of others.
PARK_AFTER_REFUSALS = 3

# Firestore cannot hold an array directly inside an array; such values are kept as JSON text
# under this key (field names shaped like __x__ are reserved, so it is not one of those).
_JSON_KEY = "_json_"


@dataclass(frozen=True)
class PendingItem:
    """A record kept locally because Firestore could not be reached when it was saved."""

    kind: str
    doc_id: str
    attempts: int
    parked: bool = False
    error: str = ""


@dataclass(frozen=True)
class SyncResult:
    """What one pass over the outbox did."""

    sent: int
    pending: int
    error: str = ""


class _Offline(StoreUnavailable):
    """Firestore failed a moment ago; the call was not tried again yet."""


class _Superseded(Exception):
    """Firestore holds a copy of the record saved later than the one being sent."""


def _doc_bytes(data: dict[str, Any]) -> int:
    """About how many bytes Firestore counts for a document (its JSON size, a bit above)."""
    return len(json.dumps(data, separators=(",", ":"), default=str).encode("utf-8"))


def _small(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, bool | int | float)
        or (isinstance(value, str) and len(value) <= 1024)
    )


def _trim_text(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return (
        value[:limit]
        + f" [... {len(value) - limit} more characters left out: too long for one Firestore "
        "document; the imported file has the whole text]"
    )


def _encode(value: Any) -> Any:
    """Make a JSON-like value storable in Firestore (no arrays directly inside arrays)."""
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if any(isinstance(v, list | tuple) for v in value):
            return {_JSON_KEY: json.dumps(value, separators=(",", ":"))}
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(value, dict):
        if len(value) == 1 and _JSON_KEY in value:
            return json.loads(value[_JSON_KEY])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def split_utf8(text: str, max_bytes: int) -> list[str]:
    """Cut text into pieces of at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        # 0b10xxxxxx bytes continue a character; back up to the start of that character.
        while end < len(data) and end > start and (data[end] & 0xC0) == 0x80:
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


def _app_name(project: str, emulator_host: str | None, credentials: str | None) -> str:
    where = f"emulator={emulator_host}" if emulator_host else f"key={credentials or 'adc'}"
    return f"{APP_PREFIX}:{project}:{where}"


def firebase_app(cfg: Config) -> Any:
    """The process's firebase_admin app for this configuration, initialized on first use only.

    ``firebase_admin.initialize_app`` raises when a name is used twice, and Streamlit reruns
    scripts, so the app is looked up by a name derived from the configuration and reused.
    """
    import firebase_admin
    from firebase_admin import credentials as fb_credentials

    if not (cfg.firestore_emulator_host or cfg.google_credentials):
        raise ConfigError(
            "SCANSCRIBE_STORE is 'firestore' but no credentials are set: set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or "
            "FIRESTORE_EMULATOR_HOST to a local emulator (host:port)."
        )
    project = cfg.firebase_project
    if cfg.firestore_emulator_host:
        from google.auth.credentials import AnonymousCredentials

        project = project or DEFAULT_EMULATOR_PROJECT
        credential: Any = AnonymousCredentials()  # type: ignore[no-untyped-call]
    else:
        try:
            credential = fb_credentials.Certificate(cfg.google_credentials)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"GOOGLE_APPLICATION_CREDENTIALS: {cfg.google_credentials!r} is not a usable "
                "service-account key file (download a JSON key for the service account in the "
                "Google Cloud console, IAM > Service accounts > Keys)."
            ) from exc
        project = project or credential.project_id
    if not project:
        raise ConfigError(
            "SCANSCRIBE_FIREBASE_PROJECT is not set and the key file names no project: set "
            "SCANSCRIBE_FIREBASE_PROJECT to the Firebase project id."
        )
    name = _app_name(project, cfg.firestore_emulator_host, cfg.google_credentials)
    try:
        return firebase_admin.get_app(name)
    except ValueError:
        pass
    try:
        return firebase_admin.initialize_app(credential, {"projectId": project}, name=name)
    except ValueError:
        # Another thread initialized it between the lookup and here.
        return firebase_admin.get_app(name)


class FirestoreStore:
    """The Store kept in Firestore, with a local outbox for writes made while it is unreachable."""

    backend = "firestore"

    def __init__(
        self,
        make_client: Callable[[], Any],
        outbox: SQLiteStore,
        *,
        project: str,
        emulator_host: str | None = None,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        flush_every_s: float = FLUSH_EVERY_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._make_client = make_client
        self._flush_every_s = flush_every_s
        self._wall = wall
        self._last_stamp = 0.0
        self._flusher: threading.Thread | None = None
        self._closing = threading.Event()
        self._client_obj: Any = None
        self._outbox = outbox
        self.host = outbox.host
        self.project = project
        self.emulator_host = emulator_host
        self.timeout_s = timeout_s
        self._clock = clock
        self._state_lock = threading.Lock()
        self._key_locks = [threading.Lock() for _ in range(64)]
        self._sync_lock = threading.Lock()
        self._offline_until = 0.0
        self._stale_client = False
        self._last_error = ""
        self._pending = {item[0] for item in outbox.outbox_items()}
        # How many times this process has put each key in the outbox: a sync sends a pending
        # copy only if no newer copy was put while it ran.
        self._puts: dict[str, int] = {}
        self._next_auto_sync = 0.0

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        outbox: SQLiteStore,
        clock: Callable[[], float] = time.monotonic,
        flush_every_s: float = FLUSH_EVERY_S,
    ) -> FirestoreStore:
        """Build the store from settings and send what the outbox holds; ConfigError if unset."""
        app = firebase_app(cfg)
        store = cls(
            client_factory(cfg),
            outbox,
            project=app.project_id,
            emulator_host=cfg.firestore_emulator_host,
            timeout_s=cfg.firestore_timeout_s,
            clock=clock,
            flush_every_s=flush_every_s,
        )
        if store._pending:
            store.sync_outbox()
            store._start_flusher()
        return store

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def _client(self) -> Any:
        with self._state_lock:
            if self._client_obj is None or self._stale_client:
                # A gRPC channel that failed to connect waits out a growing back-off before it
                # tries again; a fresh client connects as soon as Firestore is back.
                old, self._client_obj = self._client_obj, self._make_client()
                self._stale_client = False
                _close_client(old)
            return self._client_obj

    def _retry(self) -> Any:
        return short_retry(min(RETRY_DEADLINE_S, self.timeout_s))

    def _opts(self) -> dict[str, Any]:
        return {"retry": self._retry(), "timeout": self.timeout_s}

    def _call(self, rpc: Callable[[], T], limit: float | None = None) -> T:
        """Run one streaming RPC (a read) under a hard deadline of its own.

        gRPC's deadline was seen not to fire for a streaming call started while the server was
        closing its connections (a quarter of tries here): the read waited for ever. Unary calls
        (every write) kept their deadline, so they run directly. Here the caller gives up after
        the timeout, and closing the client cancels the stuck call.
        """
        wait_s = (limit if limit is not None else self.timeout_s) + 1.0
        try:
            return call_with_deadline(rpc, wait_s)
        except gexc_deadline() as exc:
            with self._state_lock:
                stuck, self._client_obj = self._client_obj, None
            _close_client(stuck)
            raise exc

    def _get_doc(self, ref: Any) -> Any:
        return self._call(lambda: ref.get(**self._opts()))

    def _stream(self, query: Any) -> list[Any]:
        return self._call(lambda: list(query.stream(**self._opts())))

    def _commit(self, batch: Any) -> None:
        batch.commit(**self._opts())

    def _offline(self) -> bool:
        return self._clock() < self._offline_until

    def _remote(self, what: str, fn: Callable[[], T], *, force: bool = False) -> T:
        """Run one Firestore call, translating its failures into StoreUnavailable."""
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc

        if self._offline() and not force:
            raise _Offline(
                f"Firestore (project {self.project}) did not answer a moment ago "
                f"({self._last_error}); {what} was not tried again yet."
            )
        try:
            result = fn()
        except gexc.NotFound as exc:
            raise NotFound(f"Firestore has no {what}.") from exc
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError) as exc:
            raise self._down(what, exc) from exc
        self._offline_until = 0.0
        self._last_error = ""
        return result

    def _down(self, what: str, exc: BaseException) -> StoreUnavailable:
        from google.api_core import exceptions as gexc

        if isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated):
            reason = (
                "permission denied: give the service account the Cloud Datastore User role "
                "(roles/datastore.user) on the project"
            )
        elif isinstance(exc, gexc.InvalidArgument):
            reason = f"Firestore refused the data: {_first_line(exc)}"
        else:
            where = self.emulator_host or "firestore.googleapis.com"
            reason = f"Firestore at {where} did not answer ({_first_line(exc)})"
        if not isinstance(exc, gexc.InvalidArgument):
            # One bad record says nothing about the connection; anything else trips the breaker.
            with self._state_lock:
                self._offline_until = self._clock() + OFFLINE_BACKOFF_S
                self._stale_client = True
                self._last_error = reason
        log.warning("firestore: %s failed: %s", what, reason)
        return StoreUnavailable(f"Could not reach Firestore for {what}: {reason}.")

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock = self._key_locks[hash(key) % len(self._key_locks)]
        with lock:
            yield

    # -- the outbox --------------------------------------------------------------------------
    def _write(
        self,
        kind: str,
        doc_id: str,
        push: Callable[[], None],
        body: Callable[[], dict[str, Any]],
    ) -> None:
        """Send one record to Firestore, or keep it in the outbox when Firestore is unreachable."""
        key = f"{kind}:{doc_id}"
        with self._locked(key):
            try:
                self._remote(f"{kind} {doc_id}", push)
            except StoreUnavailable as exc:
                self._outbox.outbox_put(key, kind, doc_id, body())
                self._puts[key] = self._puts.get(key, 0) + 1
                self._pending.add(key)
                level = logging.INFO if isinstance(exc, _Offline) else logging.WARNING
                log.log(level, "kept %s %s in the local outbox: %s", kind, doc_id, exc)
                self._start_flusher()
                return
            except (ValueError, TypeError, OverflowError) as exc:
                # The client cannot even encode this record (an integer past 64 bits, say):
                # keep it here, parked with the reason, and let every other record go on.
                self._outbox.outbox_put(key, kind, doc_id, body())
                self._outbox.outbox_park(key, f"{kind} {doc_id} cannot be sent: {exc}")
                self._pending.add(key)
                log.error("parked %s %s in the local outbox: %s", kind, doc_id, exc)
                return
            if key in self._pending:
                # This newer copy reached Firestore; the older pending one must never follow it.
                self._outbox.outbox_done(key)
                self._pending.discard(key)
        if not self._pending or self._clock() < self._next_auto_sync:
            return
        if self.sync_outbox().pending:
            # Something could not be sent (a record Firestore refuses, say): do not retry it on
            # every save, only now and then.
            self._next_auto_sync = self._clock() + OFFLINE_BACKOFF_S

    def _push_body(self, kind: str, body: dict[str, Any]) -> None:
        # Copies kept by older versions carry no time: they lose to anything saved since.
        stamp = float(body.get(WRITTEN_AT) or 0.0)
        if kind == "report":
            self._push_report(report_from_dict(body), stamp)
        elif kind == "job":
            self._push_record(JOBS, record_from_dict(Job, body), stamp)
        elif kind == "summary":
            self._push_record(SUMMARIES, record_from_dict(Summary, body), stamp)
        elif kind == "comparison":
            self._push_record(COMPARISONS, record_from_dict(Comparison, body), stamp)
        elif kind == "audit":
            self._push_audit(audit.from_dict(body))
        else:
            raise StoreError(f"The outbox holds a record of unknown kind {kind!r}.")

    def pending(self) -> list[PendingItem]:
        """Records saved locally that wait for Firestore, oldest first; parked ones say why."""
        items = self._outbox.outbox_items()
        parked = self._outbox.outbox_parked()
        self._pending = {i[0] for i in items}
        return [
            PendingItem(kind, doc_id, attempts, key in parked, parked.get(key, ""))
            for key, kind, doc_id, _, attempts in items
        ]

    def _start_flusher(self) -> None:
        """Send what waits in the outbox in the background, so it lands without another save."""
        with self._state_lock:
            if self._closing.is_set() or (self._flusher and self._flusher.is_alive()):
                return
            self._flusher = threading.Thread(
                target=self._flush, name="firestore-outbox", daemon=True
            )
            self._flusher.start()

    def _flush(self) -> None:
        while not self._closing.wait(self._flush_every_s):
            try:
                result = self.sync_outbox()
                parked = len(self._outbox.outbox_parked())
            except Exception:  # the loop must go on; the next pass tries again
                log.exception("sending the outbox in the background failed")
                continue
            if result.pending <= parked:
                return

    def _park_or_count(self, key: str, exc: BaseException, attempts: int) -> None:
        """Count a refusal of a pending record; park it when retrying cannot help."""
        from google.api_core import exceptions as gexc

        error = str(exc) or type(exc).__name__
        cause = exc.__cause__ if isinstance(exc, StoreUnavailable) else exc
        permanent = not isinstance(exc, StoreUnavailable) or isinstance(
            cause, gexc.InvalidArgument | gexc.FailedPrecondition
        )
        self._outbox.outbox_failed(key, error)
        if permanent or attempts + 1 >= PARK_AFTER_REFUSALS:
            self._outbox.outbox_park(key, error)
            log.error("parked %s in the outbox: %s", key, error)

    def is_pending(self, kind: str, doc_id: str) -> bool:
        """Whether this record (kind: report, job, summary or comparison) waits in the outbox."""
        return f"{kind}:{doc_id}" in self._pending

    def sync_outbox(self) -> SyncResult:
        """Send every pending record to Firestore now; what still fails stays pending."""
        if not self._sync_lock.acquire(blocking=False):
            # Another thread is sending right now; it will send these too.
            return SyncResult(0, len(self._pending))
        try:
            sent, error = 0, ""
            puts = dict(self._puts)
            items = self._outbox.outbox_items()
            self._pending = {i[0] for i in items}
            if not items and self._offline() and not self._probe():
                # Nothing to send, but someone asked to try now: say whether it answers.
                error = self._last_error
            parked = self._outbox.outbox_parked()
            for key, kind, doc_id, body, attempts in items:
                if key in parked:
                    continue  # refused for good; kept locally and shown in System status
                with self._locked(key):
                    if key not in self._pending:
                        continue  # a newer copy went straight to Firestore meanwhile
                    if self._puts.get(key, 0) != puts.get(key, 0):
                        continue  # a newer copy is in the outbox now; the next sync sends it
                    try:
                        self._remote(
                            f"pending {kind} {doc_id}",
                            functools.partial(self._push_body, kind, body),
                            force=sent == 0 and not error,
                        )
                    except _Superseded:
                        log.info("dropped %s from the outbox: Firestore holds a later copy", key)
                    except _Offline as exc:
                        error = str(exc)
                        continue
                    except StoreUnavailable as exc:
                        error = str(exc)
                        if not self._offline():
                            self._park_or_count(key, exc, attempts)
                        continue
                    except Exception as exc:  # a record that cannot even be built: park it
                        error = f"{kind} {doc_id} cannot be sent: {exc}"
                        self._park_or_count(key, exc, attempts)
                        continue
                    self._outbox.outbox_done(key)
                    self._pending.discard(key)
                    sent += 1
            if sent:
                log.info("sent %d pending record(s) to Firestore", sent)
            return SyncResult(sent, len(self._pending), error)
        finally:
            self._sync_lock.release()

    def _local_copy(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        key = f"{kind}:{doc_id}"
        if key not in self._pending:
            return None
        for item_key, _, _, body, _ in self._outbox.outbox_items():
            if item_key == key:
                return body
        return None

    def _local_copies(self, kind: str) -> list[dict[str, Any]]:
        if not any(k.startswith(kind + ":") for k in self._pending):
            return []
        return [body for _, k, _, body, _ in self._outbox.outbox_items() if k == kind]

    # -- status ------------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the data lives."""
        where = f"emulator at {self.emulator_host}" if self.emulator_host else "Google Cloud"
        return f"Firestore project {self.project} ({where}), outbox in {self._outbox.path}"

    def _probe(self) -> bool:
        """One quick read that tells whether Firestore answers right now."""
        try:
            client = self._client
            ref = client.collection(SCANS).document("health-check")
            limit = min(HEALTH_TIMEOUT_S, self.timeout_s)
            self._remote(
                "a health check",
                lambda: self._call(lambda: ref.get(retry=None, timeout=limit), limit),
                force=True,
            )
        except StoreError:
            return False
        return True

    def health(self) -> dict[str, Any]:
        """Backend, project, emulator, whether Firestore answers a quick read, pending count."""
        started = time.perf_counter()
        answers = self._probe()
        error = "" if answers else self._last_error
        try:
            pending = len(self.pending())
        except StoreError as exc:
            pending, error = -1, error or str(exc)
        try:
            parked = len(self._outbox.outbox_parked())
        except StoreError:
            parked = -1
        status: dict[str, Any] = {
            "parked": parked,
            "ok": answers,
            "backend": "firestore",
            "project": self.project,
            "emulator_host": self.emulator_host,
            "answers": answers,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "pending": pending,
            "outbox": str(self._outbox.path),
        }
        if error:
            status["error"] = error
        return status

    # -- reports -----------------------------------------------------------------------------
    def save_report(self, report: Report) -> None:
        """Save a report's hosts in chunks, then its metadata, which makes the new chunks live."""
        if not report.created_at:
            report = dataclasses.replace(report, created_at=time.time())
        stamp = self._stamp()
        self._write(
            "report",
            report.id,
            lambda: self._direct("report", report.id, lambda: self._push_report(report, stamp)),
            lambda: {**report_to_dict(report), WRITTEN_AT: stamp},
        )
        self._keep_copy(report)

    def _keep_copy(self, report: Report) -> None:
        """Keep a local copy of a report, so that it can be opened while Firestore is down."""
        try:
            self._outbox.cache_report(report)
        except StoreError as exc:
            # Only a convenience: the report itself is safe in Firestore or in the outbox.
            log.warning("could not keep a local copy of report %s: %s", report.id, exc)

    def _push_report(self, report: Report, written_at: float) -> None:
        client = self._client
        scan = client.collection(SCANS).document(report.id)
        raw = hosts_to_json(report.hosts)
        generation = hashlib.sha256(raw).hexdigest()[:16]
        hosts = raw.decode("utf-8")
        pieces = split_utf8(hosts, CHUNK_BYTES)
        plain = report_meta(report)
        for name in ("args", "note"):
            plain[name] = _trim_text(plain[name] or "", META_TEXT_MAX)
        meta = _encode(plain)
        meta.update(
            hosts_total=len(report.hosts),
            hosts_up=report.hosts_up,
            open_ports=report.open_port_count,
            generation=generation,
            chunks=len(pieces),
        )
        meta[WRITTEN_AT] = written_at
        if _doc_bytes(meta) > INLINE_MAX_BYTES:
            meta["extra"] = {"_json_": _trim_text(json.dumps(plain["extra"]), META_TEXT_MAX)}
            meta["targets"] = list(plain["targets"][:1000])
        old = self._get_doc(scan)
        old_meta = old.to_dict() if old.exists else {}
        if float(old_meta.get(WRITTEN_AT) or 0.0) > written_at:
            raise _Superseded(report.id)
        batch = _Batch(client, self._commit)
        chunks = scan.collection(HOST_CHUNKS)
        for seq, piece in enumerate(pieces):
            batch.set(
                chunks.document(f"{generation}-{seq:05d}"),
                {"generation": generation, "seq": seq, "data": piece},
                len(piece.encode("utf-8")),
            )
        # The metadata names the chunks to read, so until it lands readers see the old report.
        batch.set(scan, meta, len(json.dumps(meta)))
        batch.commit()
        if old_meta and old_meta.get("generation") != generation:
            for seq in range(int(old_meta.get("chunks", 0))):
                batch.delete(chunks.document(f"{old_meta['generation']}-{seq:05d}"))
            batch.commit()

    def get_report(self, report_id: str) -> Report:
        """The whole report, its hosts read back from their chunks."""
        local = self._local_copy("report", report_id)
        if local is not None:
            return report_from_dict(local)
        client = self._client

        def read() -> Report | None:
            scan = client.collection(SCANS).document(report_id)
            snap = self._get_doc(scan)
            if not snap.exists:
                return None
            meta = _decode(snap.to_dict())
            generation = meta["generation"]
            refs = [
                scan.collection(HOST_CHUNKS).document(f"{generation}-{seq:05d}")
                for seq in range(int(meta["chunks"]))
            ]
            pieces: dict[int, str] = {}
            for chunk in self._call(lambda: list(client.get_all(refs, **self._opts()))):
                if chunk.exists:
                    data = chunk.to_dict()
                    pieces[int(data["seq"])] = data["data"]
            if len(pieces) != len(refs):
                raise StoreError(
                    f"Report {report_id!r} in Firestore is missing host chunks "
                    f"({len(pieces)} of {len(refs)}); save it again."
                )
            text = "".join(pieces[i] for i in range(len(refs)))
            return report_from_meta(meta, hosts_from_json(text))

        try:
            report = self._remote(f"report {report_id}", read)
        except StoreUnavailable:
            copy = self._outbox.cached_report(report_id)
            if copy is None:
                raise
            log.info("Firestore is unreachable; report %s opened from its local copy", report_id)
            return copy
        if report is None:
            self._outbox.drop_cached_report(report_id)
            raise NotFound(f"No report with id {report_id!r}.")
        self._keep_copy(report)
        return report

    def list_reports(self, limit: int | None = None) -> list[ReportSummary]:
        """History rows, newest scan first, with how many summaries each has.

        Ordered by when each scan ran, not when it was saved. Documents saved before the scan
        time was indexable have no field to order on, so every row is read and sorted here;
        ``limit`` cuts the sorted list.
        """
        client = self._client

        def read() -> list[dict[str, Any]]:
            query = client.collection(SCANS).order_by("created_at", direction="DESCENDING")
            return [_decode(s.to_dict()) for s in self._stream(query)]

        metas = {m["id"]: m for m in self._remote("the report list", read)}
        for body in self._local_copies("report"):
            r = report_from_dict(body)
            meta = report_meta(r)
            meta.update(hosts_total=len(r.hosts), hosts_up=r.hosts_up, open_ports=r.open_port_count)
            metas[r.id] = meta
        rows = sorted(
            metas.values(),
            key=lambda m: (m.get("started_at") or m.get("created_at") or 0.0, m["id"]),
        )
        rows.reverse()
        if limit is not None:
            rows = rows[: int(limit)]
        counts = self._summary_counts([m["id"] for m in rows])
        return [
            ReportSummary(
                id=m["id"],
                targets=tuple(m.get("targets", ())),
                profile=m.get("profile", ""),
                source=m.get("source", ""),
                created_at=float(m.get("created_at") or 0.0),
                started_at=m.get("started_at"),
                finished_at=m.get("finished_at"),
                hosts_total=int(m.get("hosts_total", 0)),
                hosts_up=int(m.get("hosts_up", 0)),
                open_ports=int(m.get("open_ports", 0)),
                complete=bool(m.get("complete", True)),
                owner=m.get("owner", ""),
                summaries=counts.get(m["id"], 0),
            )
            for m in rows
        ]

    def _summary_counts(self, report_ids: list[str]) -> dict[str, int]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        client = self._client
        seen: dict[str, str] = {}

        def read(ids: list[str]) -> list[tuple[str, str]]:
            query = (
                client.collection(SUMMARIES)
                .where(filter=FieldFilter("report_id", "in", ids))
                .select(["report_id"])
            )
            return [(s.id, s.get("report_id")) for s in self._stream(query)]

        for start in range(0, len(report_ids), IN_QUERY_MAX):
            ids = report_ids[start : start + IN_QUERY_MAX]
            seen.update(self._remote("summary counts", functools.partial(read, ids)))
        for body in self._local_copies("summary"):
            seen[body["id"]] = body["report_id"]
        counts: dict[str, int] = {}
        for report_id in seen.values():
            counts[report_id] = counts.get(report_id, 0) + 1
        return counts

    def delete_report(self, report_id: str) -> None:
        """Remove a report, its host chunks and its summaries (here and in the outbox)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        client = self._client
        key = f"report:{report_id}"
        # A diff summary whose base is gone could no longer be checked: it goes with its base.
        pending_summaries = [
            b["id"]
            for b in self._local_copies("summary")
            if report_id in (b.get("report_id"), b.get("base_report_id"))
        ]

        def delete() -> bool:
            scan = client.collection(SCANS).document(report_id)
            exists = self._get_doc(scan).exists
            batch = _Batch(client, self._commit)
            for chunk in self._stream(scan.collection(HOST_CHUNKS).select(["seq"])):
                batch.delete(chunk.reference)
            for field in ("report_id", "base_report_id"):
                summaries = client.collection(SUMMARIES).where(
                    filter=FieldFilter(field, "==", report_id)
                )
                for snap in self._stream(summaries.select(["report_id"])):
                    for part in self._stream(snap.reference.collection(PARTS).select(["seq"])):
                        batch.delete(part.reference)
                    batch.delete(snap.reference)
            batch.delete(scan)
            batch.commit()
            return bool(exists)

        with self._locked(key):
            existed = self._remote(f"deleting report {report_id}", delete)
            self._outbox.drop_cached_report(report_id)
            was_pending = key in self._pending
            if was_pending:
                self._outbox.outbox_done(key)
                self._pending.discard(key)
        for summary_id in pending_summaries:
            self._outbox.outbox_done(f"summary:{summary_id}")
            self._pending.discard(f"summary:{summary_id}")
        if not (existed or was_pending):
            raise NotFound(f"No report with id {report_id!r}.")

    # -- generic records ---------------------------------------------------------------------
    def _stamp(self) -> float:
        """When a record is saved: wall-clock time, strictly increasing within this process."""
        with self._state_lock:
            self._last_stamp = max(self._wall(), self._last_stamp + 1e-6)
            return self._last_stamp

    def _push_record(
        self, collection: str, rec: Job | Summary | Comparison, written_at: float
    ) -> None:
        """Write a record unless Firestore holds a copy saved later (by any process).

        The read and the write are one transaction, so no other writer slips in between. A
        record too big for one document goes in pieces, written before the document naming them.
        """
        from google.cloud import firestore

        client = self._client
        doc = client.collection(collection).document(rec.id)
        data = _encode(record_to_dict(rec))
        data[WRITTEN_AT] = written_at
        parts: list[str] = []
        if _doc_bytes(data) > INLINE_MAX_BYTES:
            text = json.dumps(data, separators=(",", ":"))
            generation = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
            parts = split_utf8(text, CHUNK_BYTES)
            top = {k: v for k, v in data.items() if _small(v)}
            data = {**top, "_parts": len(parts), "_generation": generation}
            batch = _Batch(client, self._commit)
            for seq, piece in enumerate(parts):
                batch.set(
                    doc.collection(PARTS).document(f"{generation}-{seq:05d}"),
                    {"seq": seq, "data": piece},
                    len(piece.encode("utf-8")),
                )
            batch.commit()

        def put(transaction: Any) -> dict[str, Any]:
            snap = doc.get(transaction=transaction, **self._opts())
            held = snap.to_dict() if snap.exists else {}
            if float(held.get(WRITTEN_AT) or 0.0) > written_at:
                raise _Superseded(rec.id)
            # Say so outright when a record split before is whole now: a replaced document
            # loses its old fields in Firestore, but some emulators merge them.
            transaction.set(doc, {"_parts": 0, **data} if held.get("_parts") else data)
            return held

        limit = min(RETRY_DEADLINE_S, self.timeout_s)
        old = self._call(lambda: firestore.transactional(put)(client.transaction()), limit)
        if old.get("_parts") and old.get("_generation") != data.get("_generation"):
            batch = _Batch(client, self._commit)
            for seq in range(int(old["_parts"])):
                batch.delete(doc.collection(PARTS).document(f"{old['_generation']}-{seq:05d}"))
            batch.commit()

    def _expand(self, ref: Any, raw: dict[str, Any]) -> dict[str, Any]:
        """A document's whole record: the document itself, or its pieces put back together."""
        if not raw.get("_parts"):
            return dict(_decode(raw))
        generation, count = raw["_generation"], int(raw["_parts"])
        refs = [ref.collection(PARTS).document(f"{generation}-{i:05d}") for i in range(count)]
        found: dict[int, str] = {}
        for part in self._call(lambda: list(self._client.get_all(refs, **self._opts()))):
            if part.exists:
                found[int(part.get("seq"))] = part.get("data")
        if len(found) != count:
            raise StoreError(f"Record {ref.id!r} in Firestore is missing pieces; save it again.")
        return dict(_decode(json.loads("".join(found[i] for i in range(count)))))

    def _save_record(self, kind: str, collection: str, rec: Job | Summary | Comparison) -> None:
        stamp = self._stamp()
        self._write(
            kind,
            rec.id,
            lambda: self._direct(kind, rec.id, lambda: self._push_record(collection, rec, stamp)),
            lambda: {**record_to_dict(rec), WRITTEN_AT: stamp},
        )

    @staticmethod
    def _direct(kind: str, doc_id: str, push: Callable[[], None]) -> None:
        """A direct write that finds a later copy in Firestore has nothing left to do."""
        try:
            push()
        except _Superseded:
            log.info("%s %s not written: Firestore holds a copy saved later", kind, doc_id)

    def _get(self, kind: str, collection: str, cls: type[R], rec_id: str, what: str) -> R:
        local = self._local_copy(kind, rec_id)
        if local is not None:
            return record_from_dict(cls, local)
        client = self._client
        snap = self._remote(
            f"{what} {rec_id}",
            lambda: self._get_doc(client.collection(collection).document(rec_id)),
        )
        if not snap.exists:
            raise NotFound(f"No {what} with id {rec_id!r}.")
        body = self._remote(
            f"{what} {rec_id}", lambda: self._expand(snap.reference, snap.to_dict())
        )
        return record_from_dict(cls, body)

    def _query(self, what: str, queries: Iterable[Any]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for query in queries:
            docs = self._remote(what, functools.partial(self._stream, query))
            for snap in docs:
                raw = snap.to_dict()
                if raw.get("_parts"):
                    found[snap.id] = self._remote(
                        what, functools.partial(self._expand, snap.reference, raw)
                    )
                else:
                    found[snap.id] = _decode(raw)
        return found

    def _newest_first(
        self,
        kind: str,
        cls: type[R],
        found: dict[str, dict[str, Any]],
        keep: Callable[[dict[str, Any]], bool] = lambda _: True,
        limit: int | None = None,
    ) -> list[R]:
        for body in self._local_copies(kind):
            if keep(body):
                found[body["id"]] = body
        rows = sorted(found.values(), key=lambda d: (d.get("created_at") or 0.0, d["id"]))
        rows.reverse()
        if limit is not None:
            rows = rows[: int(limit)]
        return [record_from_dict(cls, d) for d in rows]

    # -- jobs --------------------------------------------------------------------------------
    def save_job(self, job: Job) -> None:
        """Insert or replace a job."""
        self._save_record("job", JOBS, job)

    def get_job(self, job_id: str) -> Job:
        """One job."""
        return self._get("job", JOBS, Job, job_id, "scan job")

    def list_jobs(
        self, statuses: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[Job]:
        """Jobs, newest first, optionally only those in ``statuses``."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        jobs = self._client.collection(JOBS)
        if statuses:
            # Filtering here and sorting below needs no composite index in Firestore.
            query = jobs.where(filter=FieldFilter("status", "in", list(statuses)))
        else:
            query = jobs.order_by("created_at", direction="DESCENDING")
            if limit is not None:
                query = query.limit(int(limit))
        found = self._query("the job list", [query])
        return self._newest_first(
            "job", Job, found, lambda b: not statuses or b.get("status") in statuses, limit
        )

    # -- summaries ---------------------------------------------------------------------------
    def save_summary(self, summary: Summary) -> None:
        """Insert or replace a summary (called repeatedly while it streams)."""
        self._save_record("summary", SUMMARIES, summary)

    def get_summary(self, summary_id: str) -> Summary:
        """One summary."""
        return self._get("summary", SUMMARIES, Summary, summary_id, "summary")

    def list_summaries(self, report_id: str | None = None) -> list[Summary]:
        """Summaries, newest first; those of one report (or diff base) when given."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        summaries = self._client.collection(SUMMARIES)
        if report_id is None:
            queries = [summaries.order_by("created_at", direction="DESCENDING")]
        else:
            queries = [
                summaries.where(filter=FieldFilter("report_id", "==", report_id)),
                summaries.where(filter=FieldFilter("base_report_id", "==", report_id)),
            ]
        found = self._query("the summary list", queries)
        return self._newest_first(
            "summary",
            Summary,
            found,
            lambda b: (
                report_id is None or report_id in (b.get("report_id"), b.get("base_report_id"))
            ),
        )

    # -- comparisons -------------------------------------------------------------------------
    def save_comparison(self, comparison: Comparison) -> None:
        """Insert or replace a model comparison."""
        self._save_record("comparison", COMPARISONS, comparison)

    def get_comparison(self, comparison_id: str) -> Comparison:
        """One comparison."""
        return self._get("comparison", COMPARISONS, Comparison, comparison_id, "comparison")

    def list_comparisons(self) -> list[Comparison]:
        """Comparisons, newest first."""
        query = self._client.collection(COMPARISONS).order_by("created_at", direction="DESCENDING")
        return self._newest_first(
            "comparison", Comparison, self._query("the comparison list", [query])
        )

    # -- the audit trail (append-only) -------------------------------------------------------
    def _push_audit(self, event: AuditEvent) -> None:
        from google.api_core.exceptions import AlreadyExists

        doc = self._client.collection(audit.AUDIT_COLLECTION).document(event.id)
        with contextlib.suppress(AlreadyExists):  # a retry of an event that already landed
            doc.create(audit.to_dict(event), **self._opts())

    def append_audit(self, event: AuditEvent) -> None:
        """Create one audit document (never overwrite one); kept in the outbox while offline."""
        self._write(
            "audit", event.id, lambda: self._push_audit(event), lambda: audit.to_dict(event)
        )

    def list_audit(
        self,
        actor: str | None = None,
        action: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events, newest first, with those still waiting in the outbox."""
        query = self._client.collection(audit.AUDIT_COLLECTION).order_by(
            "at", direction="DESCENDING"
        )
        found = self._query("the audit trail", [query])
        for body in self._local_copies("audit"):
            found[body["id"]] = body
        events = [audit.from_dict(b) for b in found.values()]
        events = [e for e in events if audit.matches(e, actor, action, since, until)]
        events.sort(key=lambda e: (e.at, e.id), reverse=True)
        return events if limit is None else events[: int(limit)]

    def close(self) -> None:
        """Close the Firestore channel and the outbox's connection."""
        self._closing.set()
        with self._state_lock:
            old, self._client_obj = self._client_obj, None
        _close_client(old)
        self._outbox.close()


class _Batch:
    """Writes grouped into commits that stay within Firestore's count and size limits."""

    def __init__(self, client: Any, commit: Callable[[Any], None]) -> None:
        self._client = client
        self._commit = commit
        self._batch = client.batch()
        self._writes = 0
        self._bytes = 0

    def _room(self, size: int) -> None:
        if self._writes and (
            self._writes + 1 > BATCH_MAX_WRITES or self._bytes + size > BATCH_MAX_BYTES
        ):
            self.commit()

    def set(self, ref: Any, data: dict[str, Any], size: int) -> None:
        """Add a whole-document write."""
        self._room(size + 200)
        self._batch.set(ref, data)
        self._writes += 1
        self._bytes += size + 200

    def delete(self, ref: Any) -> None:
        """Add a delete."""
        self._room(200)
        self._batch.delete(ref)
        self._writes += 1
        self._bytes += 200

    def commit(self) -> None:
        """Send what is queued, if anything."""
        if self._writes:
            self._commit(self._batch)
        self._batch = self._client.batch()
        self._writes = 0
        self._bytes = 0


def client_factory(cfg: Config) -> Callable[[], Any]:
    """A function that builds a Firestore client for ``cfg`` on the app's firebase_admin app.

    Every part of ScanScribe that keeps data in Firestore (the store, the monitor, the feeds)
    builds its clients here, so all of them honour the same validated settings.
    """
    app = firebase_app(cfg)

    def make_client() -> Any:
        from google.cloud import firestore

        client = firestore.Client(
            project=app.project_id, credentials=app.credential.get_credential()
        )
        # The library reads FIRESTORE_EMULATOR_HOST from os.environ when it builds the client;
        # the validated configuration is the one source, so it decides here.
        client._emulator_host = cfg.firestore_emulator_host
        return client

    return make_client


@contextlib.contextmanager
def google_errors(what: str, then: str) -> Iterator[None]:
    """Turn any Google API error (a RetryError too) into StoreUnavailable: what failed, then
    ``then``, what the user should know or do next."""
    from google.api_core import exceptions as gexc

    try:
        yield
    except gexc.GoogleAPIError as exc:
        raise StoreUnavailable(
            f"Firestore could not {what} ({type(exc).__name__}). Check the network and the "
            f"credentials; {then}"
        ) from exc


def gexc_deadline() -> type[Exception]:
    """google.api_core's DeadlineExceeded (imported late: the SQLite default never needs it)."""
    from google.api_core import exceptions as gexc

    return gexc.DeadlineExceeded


def short_retry(deadline_s: float) -> Any:
    """A retry of transient Firestore errors that gives up after ``deadline_s`` in total."""
    from google.api_core import exceptions as gexc
    from google.api_core.retry import Retry, if_exception_type

    return Retry(
        predicate=if_exception_type(
            gexc.ServiceUnavailable,
            gexc.InternalServerError,
            gexc.TooManyRequests,
            gexc.DeadlineExceeded,
        ),
        initial=0.1,
        maximum=1.0,
        multiplier=2.0,
        timeout=deadline_s,
    )


def call_with_deadline(rpc: Callable[[], T], wait_s: float) -> T:
    """Run a Firestore read in a thread of its own; DeadlineExceeded when it takes longer.

    gRPC's own deadline was seen not to fire for a streaming read started while the server was
    closing its connections, so the caller stops waiting here instead.
    """
    outcome: list[tuple[bool, Any]] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, rpc()))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, name="firestore-call", daemon=True).start()
    if not done.wait(wait_s):
        raise gexc_deadline()(f"no answer within {wait_s:g} s")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def _close_client(client: Any) -> None:
    api = getattr(client, "_firestore_api_internal", None) if client is not None else None
    transport = getattr(api, "_transport", None)
    close = getattr(transport, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # closing a dead channel may fail; nothing to do
            close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
