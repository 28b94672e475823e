"""What the broker keeps beside the queues, in Redis: each job's attempt, run claims, leases.

Redis gives a message a worker held back only after the visibility timeout, and a scan may run
longer than any timeout. So each attempt of a job is claimed once (``SET NX``) by the worker that
runs it, which then holds a lease that it renews while nmap runs. When a lease runs out (the
worker died), whoever notices first — a live worker or the dashboard — wins the re-queue claim
for that attempt (``SET NX`` again) and sends the next attempt; a late copy of an older attempt's
message finds its attempt already claimed and is dropped. Keys::

    scanscribe:job:{id}              hash: site, attempt, max_attempts, payload (JSON), task_id
    scanscribe:active                set of job ids not yet ended
    scanscribe:run:{id}:{attempt}    the worker that took this attempt
    scanscribe:lease:{id}            the worker running it now (expires unless renewed)
    scanscribe:requeue:{id}:{attempt}  who re-queued this attempt
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import redis

from store.base import NotFound, Store, StoreError
from store.records import JOB_ACTIVE, Job
from workers.errors import BrokerUnavailable
from workers.settings import Broker

log = logging.getLogger(__name__)

LEASE_S = 10.0
RENEW_EVERY_S = 2.0
MAX_ATTEMPTS = 3
CLAIM_KEEP_S = 7 * 24 * 3600
PREFIX = "scanscribe"


@dataclass(frozen=True)
class Entry:
    """One job as the ledger has it."""

    job_id: str
    site: str
    attempt: int
    max_attempts: int
    payload: dict[str, Any]
    task_id: str


class Ledger:
    """The Redis side of every job sent to workers."""

    def __init__(self, broker: Broker, lease_s: float = LEASE_S) -> None:
        self.broker = broker
        self.lease_s = lease_s
        self._redis = redis.Redis.from_url(
            broker.url,
            socket_timeout=3.0,
            socket_connect_timeout=3.0,
            retry_on_timeout=False,
            decode_responses=True,
        )

    @contextmanager
    def _talk(self, what: str) -> Iterator[redis.Redis]:
        try:
            yield self._redis
        except redis.AuthenticationError as exc:
            raise BrokerUnavailable(
                f"The broker at {self.broker.describe()} refused the password while trying to "
                f"{what}. Check the password in SCANSCRIBE_BROKER against redis.conf."
            ) from exc
        except redis.RedisError as exc:
            raise BrokerUnavailable(
                f"The broker at {self.broker.describe()} does not answer ({type(exc).__name__}) "
                f"while trying to {what}. Start Redis (or check the network to it) and try again."
            ) from exc

    def ping(self) -> None:
        """Raise BrokerUnavailable unless Redis answers now."""
        with self._talk("reach it") as r:
            r.ping()

    def _key(self, *parts: object) -> str:
        return ":".join([PREFIX, *(str(p) for p in parts)])

    def register(
        self, job_id: str, site: str, payload: dict[str, Any], task_id: str, max_attempts: int
    ) -> None:
        """Record a job about to be queued (attempt 1)."""
        with self._talk("record the scan") as r:
            pipe = r.pipeline(transaction=True)
            pipe.hset(
                self._key("job", job_id),
                mapping={
                    "site": site,
                    "attempt": 1,
                    "max_attempts": max_attempts,
                    "payload": json.dumps(payload),
                    "task_id": task_id,
                },
            )
            pipe.sadd(self._key("active"), job_id)
            pipe.execute()

    def forget(self, job_id: str) -> None:
        """Drop a job that ended (or was never queued)."""
        with self._talk("close the scan's record") as r:
            pipe = r.pipeline(transaction=True)
            pipe.delete(self._key("job", job_id), self._key("lease", job_id))
            pipe.srem(self._key("active"), job_id)
            pipe.execute()

    def entry(self, job_id: str) -> Entry | None:
        """The job's record, or None when the ledger does not know it."""
        with self._talk("read the scan's record") as r:
            raw = r.hgetall(self._key("job", job_id))
        if not raw:
            return None
        return Entry(
            job_id=job_id,
            site=str(raw.get("site", "")),
            attempt=int(raw.get("attempt", 1)),
            max_attempts=int(raw.get("max_attempts", MAX_ATTEMPTS)),
            payload=json.loads(raw.get("payload", "{}")),
            task_id=str(raw.get("task_id", "")),
        )

    def active(self) -> list[str]:
        """Ids of the jobs not yet ended."""
        with self._talk("list the scans") as r:
            return sorted(str(m) for m in r.smembers(self._key("active")))

    def claim_run(self, job_id: str, attempt: int, worker: str) -> bool:
        """Take one attempt of a job; False when it was taken already (a repeated message)."""
        with self._talk("claim the scan") as r:
            got = r.set(self._key("run", job_id, attempt), worker, nx=True, ex=CLAIM_KEEP_S)
            if got:
                r.set(self._key("lease", job_id), worker, px=int(self.lease_s * 1000))
            return bool(got)

    def renew(self, job_id: str, worker: str) -> None:
        """Extend the lease of a job this worker runs."""
        with self._talk("renew the lease") as r:
            r.set(self._key("lease", job_id), worker, px=int(self.lease_s * 1000))

    def release(self, job_id: str) -> None:
        """Give up the lease (the attempt ended)."""
        with self._talk("release the lease") as r:
            r.delete(self._key("lease", job_id))

    def holder(self, job_id: str) -> str | None:
        """The worker whose lease on the job is live, if any."""
        with self._talk("read the lease") as r:
            value = r.get(self._key("lease", job_id))
            return None if value is None else str(value)

    def runner_of(self, job_id: str, attempt: int) -> str | None:
        """The worker that claimed this attempt, or None while it waits in the queue."""
        with self._talk("read the claim") as r:
            value = r.get(self._key("run", job_id, attempt))
            return None if value is None else str(value)

    def claim_requeue(self, job_id: str, attempt: int, who: str) -> int | None:
        """Win the right to re-queue ``attempt``; the next attempt's number, or None if lost."""
        with self._talk("claim the re-queue") as r:
            if not r.set(self._key("requeue", job_id, attempt), who, nx=True, ex=CLAIM_KEEP_S):
                return None
            return int(r.hincrby(self._key("job", job_id), "attempt", 1))

    def set_task(self, job_id: str, task_id: str) -> None:
        """Record the Celery task id of the job's current attempt (for revoke)."""
        with self._talk("record the task") as r:
            r.hset(self._key("job", job_id), "task_id", task_id)


Send = Callable[[Entry, int], str]


def reap(ledger: Ledger, store: Store, send: Send, who: str) -> list[Job]:
    """Re-queue (once) every job whose worker stopped renewing its lease; fail those out of tries.

    ``send(entry, attempt)`` queues the attempt and returns its task id. Returns the jobs changed.
    """
    changed: list[Job] = []
    for job_id in ledger.active():
        try:
            changed.extend(_reap_one(ledger, store, send, who, job_id))
        except (BrokerUnavailable, StoreError) as exc:
            log.warning("lease check of job %s skipped: %s", job_id, exc)
    return changed


def _reap_one(ledger: Ledger, store: Store, send: Send, who: str, job_id: str) -> list[Job]:
    entry = ledger.entry(job_id)
    if entry is None:
        ledger.forget(job_id)
        return []
    try:
        job = store.get_job(job_id)
    except NotFound:
        return []  # queued a moment ago: the dashboard saves the job just after sending it
    if job.status not in JOB_ACTIVE:
        ledger.forget(job_id)
        return []
    runner = ledger.runner_of(job_id, entry.attempt)
    if runner is None or ledger.holder(job_id) is not None:
        return []  # still queued, or its worker is alive
    attempt = ledger.claim_requeue(job_id, entry.attempt, who)
    if attempt is None:
        return []  # someone else re-queued it
    if attempt > entry.max_attempts:
        job = replace(
            job,
            status="failed",
            finished_at=time.time(),
            eta_s=None,
            error=f"The scan was tried {entry.max_attempts} times at site {entry.site!r} and "
            f"never finished: its worker stopped renewing the job's lease each time (last: "
            f"{runner}). Check that worker's log and the site's machines.",
        )
        store.save_job(job)
        ledger.forget(job_id)
        log.error("job %s failed after %d attempts", job_id, entry.max_attempts)
        return [job]
    job = replace(
        job,
        status="queued",
        attempt=attempt,
        progress=0.0,
        eta_s=None,
        task=f"re-queued: worker {runner} stopped answering (attempt {attempt} "
        f"of {entry.max_attempts})",
        pid=None,
        pgid=None,
    )
    store.save_job(job)
    ledger.set_task(job_id, send(entry, attempt))
    log.warning("job %s re-queued as attempt %d: worker %s went silent", job_id, attempt, runner)
    return [job]
