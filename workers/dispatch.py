"""The dashboard's side of the broker: a JobRunner whose jobs run on the workers of a site.

``submit`` validates as the local runner does (the dashboard's own scope first), picks the site,
checks that the broker answers, queues the task and only then records the job. The task carries
the job id, the validated addresses, the profile id and the canonical port spec — never an argv:
each worker builds that from its own profile table after checking its own scope.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from config import Config
from scanner.profiles import get_profile
from scanner.runner import record_cancel
from scanner.targets import MAX_PORTS, Resolver, parse_ports, resolve_targets
from store.base import Store, StoreError
from store.records import JOB_ACTIVE, Job, new_id
from workers.app import TASK_SCAN, make_app, queue_for
from workers.board import Board, Heartbeat
from workers.errors import BrokerUnavailable
from workers.ledger import MAX_ATTEMPTS, Entry, Ledger, reap
from workers.routing import choose_site
from workers.settings import Broker

log = logging.getLogger(__name__)

FINAL_STATES = ("done", "failed", "cancelled", "interrupted")
WAIT_EVERY_S = 0.1
REAP_EVERY_S = 2.0
CANCEL_WAIT_S = 5.0
# The machine recorded for a job waiting in a site's queue: no local recovery ever claims it.
QUEUED_MACHINE = "broker"
# Publishing to a broker that is down is retried briefly, then the submit says so.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5}


def task_kwargs(
    job_id: str, addresses: list[str], profile: str, ports: str, attempt: int
) -> dict[str, Any]:
    """The whole of a scan task's message: ids and validated values, JSON-ready."""
    return {
        "job_id": job_id,
        "addresses": list(addresses),
        "profile": profile,
        "ports": ports,
        "attempt": attempt,
    }


class BrokerRunner:
    """Runs scan jobs on Celery workers through Redis; same interface as LocalRunner."""

    def __init__(
        self,
        store: Store,
        config: Config,
        broker: Broker,
        board: Board,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.time,
        app: Celery | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.config = config
        self.broker = broker
        self.board = board
        self.app = app or make_app(broker)
        self.ledger = Ledger(broker)
        self.max_attempts = max_attempts
        self._resolver = resolver
        self._clock = clock
        self._next_reap = 0.0
        self.who = f"dashboard@{store.host.machine_id[:12]}:{uuid.uuid4().hex[:6]}"

    # -- what pages and System status read ---------------------------------------------------
    def heartbeats(self) -> list[Heartbeat]:
        """The workers' latest heartbeats, newest first."""
        return self.board.heartbeats()

    def sites(self) -> list[str]:
        """The sites with a live worker, by name."""
        now = self._clock()
        return sorted({b.site for b in self.heartbeats() if b.live(now)})

    def warnings(self) -> list[str]:
        """What start-up should say about this set-up."""
        if self.config.store != "firestore":
            return [
                "A broker is configured but the store is SQLite: workers on other machines "
                "cannot save their reports there. Use SCANSCRIBE_STORE=firestore unless every "
                "worker runs on this machine with the same SCANSCRIBE_DB."
            ]
        return []

    # -- the JobRunner interface -------------------------------------------------------------
    def submit(
        self, targets_text: str, profile: str, ports: str = "", owner: str = "", site: str = ""
    ) -> Job:
        """Validate, route, queue on the site's workers and record the job as queued."""
        prof = get_profile(profile)
        targets = resolve_targets(
            targets_text, self.config.scope, self.config.max_targets, self._resolver
        )
        port_spec = parse_ports(ports, MAX_PORTS)
        chosen = choose_site(
            targets.addresses, prof.needs_root, self.heartbeats(), site, self._clock()
        )
        self.ledger.ping()
        job = Job(
            id=new_id("job"),
            targets=targets.tokens,
            profile=prof.id,
            ports=port_spec,
            status="queued",
            owner=owner or self.config.user,
            created_at=self._clock(),
            runner_machine=QUEUED_MACHINE,
            site=chosen,
            attempt=1,
        )
        kwargs = task_kwargs(job.id, list(targets.addresses), prof.id, port_spec, 1)
        task_id = f"{job.id}.1"
        # The job is recorded before the message leaves, so a worker always finds it; if the
        # broker fails in between, the record is removed from the ledger and marked failed.
        self.ledger.register(job.id, chosen, kwargs, task_id, self.max_attempts)
        self.store.save_job(job)
        try:
            self._send(chosen, kwargs, task_id)
        except BrokerUnavailable:
            self._abandon(job)
            raise
        log.info("job %s queued on site %s: %s %s", job.id, chosen, prof.id, targets.addresses)
        return job

    def cancel(self, job_id: str) -> Job:
        """Record the cancel, then revoke the task with terminate: the worker kills nmap's group."""
        job = self.store.get_job(job_id)
        if job.status not in JOB_ACTIVE:
            return job
        job = record_cancel(self.store, job, self._clock())
        entry = self.ledger.entry(job_id)
        task_id = entry.task_id if entry else f"{job_id}.{job.attempt}"
        try:
            self.app.control.revoke(task_id, terminate=True, signal="SIGTERM")
        except OperationalError as exc:
            # The worker also reads the cancel from the store at its next progress update.
            log.warning("job %s: the revoke did not reach the broker: %s", job_id, exc)
        return self.wait(job_id, timeout=CANCEL_WAIT_S)

    def get(self, job_id: str) -> Job:
        """The job as the shared store has it now."""
        return self.store.get_job(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Poll the store until the job ends (or ``timeout``); re-queue dead workers' jobs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status in FINAL_STATES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job
            if time.monotonic() >= self._next_reap:
                self._next_reap = time.monotonic() + REAP_EVERY_S
                self.recover()
            time.sleep(WAIT_EVERY_S)

    def shutdown(self) -> None:
        """Nothing runs here: the workers keep their scans. Close the broker connections."""
        self.app.close()

    def recover(self) -> list[Job]:
        """Re-queue (exactly once) jobs whose worker stopped renewing its lease."""
        try:
            return reap(self.ledger, self.store, self.send_attempt, self.who)
        except BrokerUnavailable as exc:
            log.warning("lease check skipped: %s", exc)
            return []

    # -- internals ---------------------------------------------------------------------------
    def send_attempt(self, entry: Entry, attempt: int) -> str:
        """Queue another attempt of a job on its site; returns the new task id."""
        kwargs = dict(entry.payload, attempt=attempt)
        task_id = f"{entry.job_id}.{attempt}"
        self._send(entry.site, kwargs, task_id)
        return task_id

    def _send(self, site: str, kwargs: dict[str, Any], task_id: str) -> None:
        try:
            self.app.send_task(
                TASK_SCAN,
                kwargs=kwargs,
                queue=queue_for(site),
                task_id=task_id,
                serializer="json",
                retry=True,
                retry_policy=PUBLISH_RETRY,
            )
        except (OperationalError, OSError) as exc:
            raise BrokerUnavailable(
                f"The broker at {self.broker.describe()} stopped answering while the scan was "
                "queued; nothing was queued. Start Redis (or check the network to it) and try "
                "again."
            ) from exc

    def _abandon(self, job: Job) -> None:
        """Undo a submit whose message never left: the job ends failed, saying why."""
        try:
            self.store.save_job(
                replace(
                    job,
                    status="failed",
                    finished_at=self._clock(),
                    error="Not queued: the broker stopped answering.",
                )
            )
        except StoreError as exc:
            log.warning("job %s: could not record that it was not queued: %s", job.id, exc)
        with contextlib.suppress(BrokerUnavailable):
            self.ledger.forget(job.id)
