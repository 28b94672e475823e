"""The monitor's records in Firestore, through the same firebase_admin app as the main store.

Collections ``monitor_schedules``, ``monitor_runs``, ``monitor_alerts`` and
``monitor_deliveries``; document ids are chosen here, so a retried write never duplicates. A slot
is claimed with ``create()``, which fails when the run's document exists: of several schedulers,
exactly one creates it. Moving a schedule forward and leasing a delivery are transactions.
Every call has the configured deadline; failures become StoreUnavailable.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from config import Config
from monitor.models import Alert, Delivery, Run, Schedule, from_dict, to_dict
from store.base import NotFound, StoreUnavailable
from store.firestore import (
    OFFLINE_BACKOFF_S,
    call_with_deadline,
    client_factory,
    google_errors,
    short_retry,
)

T = TypeVar("T")
SCHEDULES, RUNS, ALERTS, DELIVERIES = (
    "monitor_schedules",
    "monitor_runs",
    "monitor_alerts",
    "monitor_deliveries",
)


def _eq(field: str, value: object) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(field, "==", value)


def _doc(rec: Schedule | Run | Alert | Delivery) -> dict[str, Any]:
    """The stored form: indexed fields beside the record as JSON (payloads keep their nesting)."""
    body = to_dict(rec)
    out: dict[str, Any] = {"body": json.dumps(body, sort_keys=True)}
    for key in ("active", "next_run", "created_at", "schedule_id", "status", "read", "alert_id"):
        if key in body:
            out[key] = body[key]
    if isinstance(rec, Run):
        out["due_ms"] = round(rec.due_at * 1000)
    if isinstance(rec, Delivery):
        out["next_attempt_at"] = rec.next_attempt_at
        out["lease_until"] = 0.0
    return out


class FirestoreMonitorStore:
    """MonitorStore on Firestore."""

    def __init__(self, make_client: Callable[[], Any], timeout_s: float = 10.0) -> None:
        self._client = make_client()
        self.timeout_s = timeout_s
        self._down_until = 0.0

    @classmethod
    def from_config(cls, cfg: Config) -> FirestoreMonitorStore:
        """The store for ``cfg`` (SCANSCRIBE_STORE=firestore), on the app's firebase_admin app."""
        return cls(client_factory(cfg), cfg.firestore_timeout_s)

    # -- plumbing ----------------------------------------------------------------------------
    def _translate(self, what: str) -> contextlib.AbstractContextManager[None]:
        return google_errors(what, "nothing was half-written.")

    def _col(self, name: str) -> Any:
        return self._client.collection(name)

    def _read(self, rpc: Callable[..., T], what: str) -> T:
        """A read with a hard deadline; after a failure, reads fail at once for a while, so a
        page that asks on every run does not wait out a timeout each time."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(
                f"Firestore could not {what}: it did not answer a moment ago; trying again soon."
            )
        opts = {"retry": short_retry(min(3.0, self.timeout_s)), "timeout": self.timeout_s}
        try:
            with self._translate(what):
                return call_with_deadline(lambda: rpc(**opts), self.timeout_s + 1.0)
        except StoreUnavailable:
            self._down_until = time.monotonic() + OFFLINE_BACKOFF_S
            raise

    def _get(self, coll: str, doc_id: str, what: str) -> dict[str, Any]:
        ref = self._col(coll).document(doc_id)
        snap = self._read(lambda **o: ref.get(**o), f"read a {what}")
        if not snap.exists:
            raise NotFound(f"No {what} with id {doc_id!r}.")
        data: dict[str, Any] = snap.to_dict()
        return data

    def _query(self, query: Any, what: str) -> list[dict[str, Any]]:
        return self._read(lambda **o: [s.to_dict() for s in query.stream(**o)], f"list {what}")

    def _set(self, coll: str, rec: Schedule | Run | Alert | Delivery, what: str) -> None:
        with self._translate(f"save a {what}"):
            self._col(coll).document(rec.id).set(_doc(rec), timeout=self.timeout_s)

    @staticmethod
    def _body(data: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(data["body"])
        return body

    def _transaction(self, fn: Callable[[Any], T], what: str) -> T:
        from google.cloud import firestore

        with self._translate(what):
            return firestore.transactional(fn)(self._client.transaction())  # type: ignore[no-any-return]

    # -- schedules ---------------------------------------------------------------------------
    def save_schedule(self, schedule: Schedule) -> None:
        """Insert or replace a schedule."""
        self._set(SCHEDULES, schedule, "schedule")

    def _schedule(self, data: dict[str, Any]) -> Schedule:
        body = self._body(data)
        body.update(active=data["active"], next_run=data["next_run"])
        return from_dict(Schedule, body)

    def get_schedule(self, schedule_id: str) -> Schedule:
        """One schedule, or NotFound."""
        return self._schedule(self._get(SCHEDULES, schedule_id, "schedule"))

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, oldest first."""
        rows = [self._schedule(d) for d in self._query(self._col(SCHEDULES), "schedules")]
        return sorted(rows, key=lambda s: (s.created_at, s.id))

    def due_schedules(self, now: float) -> list[Schedule]:
        """Active schedules due at ``now`` (filtered here: no composite index needed)."""
        query = self._col(SCHEDULES).where(filter=_eq("active", True))
        rows = [self._schedule(d) for d in self._query(query, "schedules")]
        return sorted((s for s in rows if s.next_run <= now), key=lambda s: s.next_run)

    def advance(self, schedule_id: str, next_run: float) -> None:
        """Move the next run forward, in a transaction, never backward."""
        ref = self._col(SCHEDULES).document(schedule_id)

        def move(tx: Any) -> None:
            snap = ref.get(transaction=tx)
            if snap.exists and snap.get("next_run") < next_run:
                tx.update(ref, {"next_run": next_run})

        self._transaction(move, "move a schedule forward")

    def delete_schedule(self, schedule_id: str) -> None:
        """Remove a schedule; its runs and alerts stay."""
        self._get(SCHEDULES, schedule_id, "schedule")
        with self._translate("remove a schedule"):
            self._col(SCHEDULES).document(schedule_id).delete(timeout=self.timeout_s)

    # -- runs --------------------------------------------------------------------------------
    def claim_run(self, run: Run) -> bool:
        """Create the run's document; it fails when another scheduler created it first."""
        from google.api_core import exceptions as gexc

        try:
            with self._translate("claim a run"):
                self._col(RUNS).document(run.id).create(_doc(run), timeout=self.timeout_s)
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, gexc.AlreadyExists | gexc.Conflict):
                return False
            raise
        return True

    def save_run(self, run: Run) -> None:
        """Update a claimed run."""
        self._set(RUNS, run, "run")

    def get_run(self, run_id: str) -> Run:
        """One run, or NotFound."""
        return from_dict(Run, self._body(self._get(RUNS, run_id, "run")))

    def list_runs(self, schedule_id: str | None = None, status: str | None = None) -> list[Run]:
        """Runs, newest slot first."""
        query = self._col(RUNS)
        if schedule_id is not None:
            query = query.where(filter=_eq("schedule_id", schedule_id))
        if status is not None:
            query = query.where(filter=_eq("status", status))
        runs = [from_dict(Run, self._body(d)) for d in self._query(query, "runs")]
        return sorted(runs, key=lambda r: (r.due_at, r.id), reverse=True)

    # -- alerts ------------------------------------------------------------------------------
    def save_alert(self, alert: Alert, deliveries: list[Delivery]) -> None:
        """The alert and its deliveries in one batch."""
        batch = self._client.batch()
        batch.set(self._col(ALERTS).document(alert.id), _doc(alert))
        for d in deliveries:
            batch.set(self._col(DELIVERIES).document(d.id), _doc(d))
        with self._translate("save an alert"):
            batch.commit(timeout=self.timeout_s)

    def _alert(self, data: dict[str, Any]) -> Alert:
        body = self._body(data)
        body["read"] = data.get("read", False)
        return from_dict(Alert, body)

    def get_alert(self, alert_id: str) -> Alert:
        """One alert, or NotFound."""
        return self._alert(self._get(ALERTS, alert_id, "alert"))

    def list_alerts(self, limit: int | None = None) -> list[Alert]:
        """Alerts, newest first."""
        alerts = [self._alert(d) for d in self._query(self._col(ALERTS), "alerts")]
        alerts.sort(key=lambda a: (a.created_at, a.id), reverse=True)
        return alerts[:limit] if limit is not None else alerts

    def mark_read(self, alert_ids: list[str], read: bool = True) -> None:
        """Mark alerts read or unread."""
        batch = self._client.batch()
        for alert_id in alert_ids:
            batch.update(self._col(ALERTS).document(alert_id), {"read": read})
        with self._translate("mark alerts read"):
            batch.commit(timeout=self.timeout_s)

    def unread_count(self) -> int:
        """How many alerts nobody has read."""
        query = self._col(ALERTS).where(filter=_eq("read", False))
        return len(self._query(query, "alerts"))

    # -- deliveries --------------------------------------------------------------------------
    def list_deliveries(self, alert_id: str | None = None) -> list[Delivery]:
        """Deliveries, of one alert when given."""
        query = self._col(DELIVERIES)
        if alert_id is not None:
            query = query.where(filter=_eq("alert_id", alert_id))
        rows = [from_dict(Delivery, self._body(d)) for d in self._query(query, "deliveries")]
        return sorted(rows, key=lambda d: d.id)

    def due_deliveries(self, now: float) -> list[Delivery]:
        """Pending deliveries that are due and not leased."""
        query = self._col(DELIVERIES).where(filter=_eq("status", "pending"))
        rows = self._query(query, "deliveries")
        due = [
            from_dict(Delivery, self._body(d))
            for d in rows
            if d["next_attempt_at"] <= now and d.get("lease_until", 0.0) < now
        ]
        return sorted(due, key=lambda d: d.next_attempt_at)

    def lease_delivery(self, delivery_id: str, owner: str, now: float, until: float) -> bool:
        """Take the delivery in a transaction unless someone holds it."""
        ref = self._col(DELIVERIES).document(delivery_id)

        def take(tx: Any) -> bool:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                return False
            data = snap.to_dict()
            if data.get("status") != "pending" or data.get("lease_until", 0.0) >= now:
                return False
            tx.update(ref, {"lease_until": until, "lease_owner": owner})
            return True

        return self._transaction(take, "lease a delivery")

    def save_delivery(self, delivery: Delivery) -> None:
        """Record the delivery and release its lease."""
        self._set(DELIVERIES, delivery, "delivery")

    def close(self) -> None:
        """Close the client."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
