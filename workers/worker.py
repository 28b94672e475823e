"""The worker process: one site's Celery worker running scans with the local runner.

``run_worker`` starts a Celery worker on the site's queue with a thread pool, a heartbeat in the
shared store every few seconds and a reaper that re-queues jobs whose worker died. Each task
re-checks its targets against this worker's own ``SCANSCRIBE_SCOPE`` and builds nmap's argv from
this worker's own profile table (``LocalRunner.adopt``); nmap runs under ``setpriv --pdeathsig``
so it dies with the worker even when the worker is killed with SIGKILL.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from celery import Celery, signals
from celery.concurrency.thread import TaskPool
from celery.worker import state as worker_state

from config import Config
from scanner.errors import ScanError, TargetRefused
from scanner.nmapbin import find_nmap, is_root
from scanner.profiles import PROFILES
from scanner.runner import LocalRunner
from store.base import NotFound, Store, StoreError
from store.records import JOB_ACTIVE, Job
from workers.app import TASK_SCAN, make_app, queue_for
from workers.board import BEAT_EVERY_S, Board, Heartbeat, open_board
from workers.dispatch import REAP_EVERY_S, BrokerRunner
from workers.errors import BrokerUnavailable
from workers.ledger import RENEW_EVERY_S, Ledger
from workers.settings import Broker, check_site

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^job-\d{8}-\d{6}-[0-9a-f]{8}$")
ADDRESS = re.compile(r"^[0-9A-Fa-f.:]{2,45}$")
PORTS = re.compile(r"^[0-9,\-]{0,200}$")
JOB_APPEARS_S = 10.0


@dataclass
class WorkerContext:
    """Everything a task needs, built once per worker process."""

    site: str
    name: str
    config: Config
    store: Store
    runner: LocalRunner
    ledger: Ledger
    board: Board
    dispatcher: BrokerRunner
    concurrency: int


_CONTEXT: WorkerContext | None = None


def _ctx() -> WorkerContext:
    if _CONTEXT is None:
        raise RuntimeError("the scan task runs only inside `python -m scanner worker`")
    return _CONTEXT


def refusal(kwargs: dict[str, Any], max_targets: int) -> str | None:
    """Why a task message is malformed, or None: only ids and plain values are accepted."""
    expected = {"job_id", "addresses", "profile", "ports", "attempt"}
    if set(kwargs) != expected:
        return f"fields {sorted(kwargs)} are not {sorted(expected)}"
    if not isinstance(kwargs["job_id"], str) or not JOB_ID.match(kwargs["job_id"]):
        return "job_id is not a job id"
    addresses = kwargs["addresses"]
    if (
        not isinstance(addresses, list)
        or not 0 < len(addresses) <= max_targets
        or not all(isinstance(a, str) and ADDRESS.match(a) for a in addresses)
    ):
        return "addresses is not a list of IP addresses"
    if kwargs["profile"] not in PROFILES:
        return "profile is not one of this worker's profiles"
    if not isinstance(kwargs["ports"], str) or not PORTS.match(kwargs["ports"]):
        return "ports is not a port list"
    if not isinstance(kwargs["attempt"], int) or not 0 < kwargs["attempt"] <= 100:
        return "attempt is not a small whole number"
    return None


def run_scan(**kwargs: Any) -> str:
    """The Celery task: run one attempt of a job here, once, holding its lease."""
    ctx = _ctx()
    why = refusal(kwargs, ctx.config.max_targets)
    if why is not None:
        log.error("scan task refused before anything ran: %s", why)
        return "refused"
    job_id: str = kwargs["job_id"]
    attempt: int = kwargs["attempt"]
    entry = ctx.ledger.entry(job_id)
    if entry is not None and attempt < entry.attempt:
        log.info("job %s: attempt %d was superseded by %d; dropped", job_id, attempt, entry.attempt)
        return "stale"
    if not ctx.ledger.claim_run(job_id, attempt, ctx.name):
        log.info("job %s: attempt %d already taken; this copy is dropped", job_id, attempt)
        return "duplicate"
    held = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(ctx, job_id, held), name=f"lease-{job_id}", daemon=True
    )
    renewer.start()
    job: Job | None = None
    try:
        job = _wait_for_job(ctx.store, job_id)
        if job is None or job.status not in JOB_ACTIVE:
            return job.status if job else "unknown"
        job = replace(job, site=ctx.site, attempt=attempt)
        try:
            job = ctx.runner.adopt(job, " ".join(kwargs["addresses"]))
        except ScanError as exc:
            what = "Refused by" if isinstance(exc, TargetRefused) else "Not run by"
            job = replace(
                job,
                status="failed",
                finished_at=time.time(),
                error=f"{what} the worker at site {ctx.site!r}: {exc}",
            )
            ctx.store.save_job(job)
            log.warning("job %s refused here: %s", job_id, exc)
        return job.status
    finally:
        held.set()
        renewer.join(timeout=5)
        try:
            if job is not None and job.status not in JOB_ACTIVE:
                ctx.ledger.forget(job_id)
            else:
                ctx.ledger.release(job_id)
        except BrokerUnavailable as exc:
            log.warning("job %s: the ledger was not updated: %s", job_id, exc)


def _wait_for_job(store: Store, job_id: str) -> Job | None:
    """The job's record; a task can arrive a moment before the dashboard's save lands."""
    deadline = time.monotonic() + JOB_APPEARS_S
    while True:
        try:
            return store.get_job(job_id)
        except NotFound:
            if time.monotonic() > deadline:
                log.error("job %s: no such job in the store; the task is dropped", job_id)
                return None
        except StoreError as exc:
            log.warning("job %s: the store did not answer: %s", job_id, exc)
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def _renew(ctx: WorkerContext, job_id: str, done: threading.Event) -> None:
    while not done.wait(RENEW_EVERY_S):
        try:
            ctx.ledger.renew(job_id, ctx.name)
        except BrokerUnavailable as exc:
            log.warning("job %s: lease not renewed: %s", job_id, exc)


class ScanPool(TaskPool):  # type: ignore[misc]  # celery is untyped
    """Celery's thread pool, where ``revoke(terminate=True)`` stops the scan, not a thread.

    A thread cannot be killed; the revoke's ``task_revoked`` signal (see :func:`_on_revoked`)
    kills the job's nmap process group instead, and the task returns as soon as nmap is gone.
    """

    def terminate_job(self, pid: Any, signal: Any = None) -> None:
        """Nothing to kill here: :func:`_on_revoked` stops the job's nmap."""


@signals.task_revoked.connect  # type: ignore[untyped-decorator]
def _on_revoked(
    sender: Any = None, request: Any = None, terminated: bool = False, **_: Any
) -> None:
    if _CONTEXT is None or request is None:
        return
    job_id = (getattr(request, "kwargs", None) or {}).get("job_id")
    if isinstance(job_id, str) and JOB_ID.match(job_id):
        log.info("job %s revoked (terminate=%s): stopping its nmap", job_id, terminated)
        threading.Thread(target=_CONTEXT.runner.cancel, args=(job_id,), daemon=True).start()


def heartbeat(ctx: WorkerContext, nmap_version: str, root: bool) -> Heartbeat:
    """This worker's heartbeat now."""
    return Heartbeat(
        worker=ctx.name,
        site=ctx.site,
        host=socket.gethostname(),
        scope=tuple(str(n) for n in ctx.config.scope),
        nmap_version=nmap_version,
        root=root,
        running=len(worker_state.active_requests),
        concurrency=ctx.concurrency,
        at=time.time(),
    )


def _beat_forever(ctx: WorkerContext, stop: threading.Event) -> None:
    # nmap --version is asked beside the beats: a slow answer must not delay the first one.
    version = ["checking"]

    def ask() -> None:
        info = find_nmap()
        version[0] = info.version if info else "not installed"

    threading.Thread(target=ask, daemon=True).start()
    root = is_root()
    while True:
        try:
            ctx.board.beat(heartbeat(ctx, version[0], root))
        except StoreError as exc:
            log.warning("heartbeat not saved: %s", exc)
        if stop.wait(BEAT_EVERY_S):
            return


def _reap_forever(ctx: WorkerContext, stop: threading.Event) -> None:
    while not stop.wait(REAP_EVERY_S):
        ctx.dispatcher.recover()


def launcher() -> tuple[str, ...]:
    """``setpriv --pdeathsig KILL``: nmap gets SIGKILL when the worker thread that started it
    dies, even under SIGKILL, so no nmap outlives its worker."""
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "KILL", "--") if setpriv else ()


def build_app(broker: Broker) -> Celery:
    """The worker's Celery app with the scan task registered."""
    app = make_app(broker)
    app.task(name=TASK_SCAN, acks_late=True)(run_scan)
    return app


def run_worker(cfg: Config, broker: Broker, store: Store, site: str, concurrency: int = 2) -> int:
    """Serve ``site``'s queue until stopped; returns the worker's exit code."""
    global _CONTEXT
    check_site(site)
    app = build_app(broker)
    board = open_board(cfg)
    name = f"{site}@{socket.gethostname()}-{os.getpid()}"
    runner = LocalRunner(store, cfg, launcher=launcher())
    dispatcher = BrokerRunner(store, cfg, broker, board, app=app)
    _CONTEXT = WorkerContext(
        site=site,
        name=name,
        config=cfg,
        store=store,
        runner=runner,
        ledger=Ledger(broker),
        board=board,
        dispatcher=dispatcher,
        concurrency=concurrency,
    )
    for warning in dispatcher.warnings():
        log.warning("%s", warning)
    stop = threading.Event()
    for target in (_beat_forever, _reap_forever):
        threading.Thread(target=target, args=(_CONTEXT, stop), daemon=True).start()
    worker = app.Worker(
        hostname=name,
        queues=[queue_for(site)],
        pool_cls=ScanPool,
        concurrency=concurrency,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        loglevel="INFO",
        quiet=True,
    )
    try:
        worker.start()
    finally:
        stop.set()
        runner.shutdown()
        board.close()
    return int(worker.exitcode or 0)
