"""The scheduler: claims each due slot once, runs the scan, diffs it and raises alerts.

Any number of schedulers may share one store (dashboards, ``python -m scanner scheduler``, other
machines). A slot is claimed by inserting its run with an id derived from the schedule and the
slot's time, so exactly one claim lands. After downtime only the newest missed slot runs (one
catch-up, not one per missed slot). A slot that falls due while the previous run of the same
schedule is still going is recorded as ``skipped``. A run whose scheduler died (killed, crashed)
is marked ``interrupted`` by the next scheduler that looks: on the same machine when its process
is gone, from another machine when its heartbeat is older than ``stale_after_s``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.alerts import build_payload, matched_kinds, risk_high
from monitor.brief import Brief, make_brief
from monitor.cadence import cadence_of
from monitor.delivery import Channel, Deliverer, channels_from
from monitor.models import Alert, Delivery, Run, Schedule, run_id
from monitor.settings import MonitorSettings
from monitor.storage import MonitorStore
from scanner.diff import diff_reports
from scanner.errors import ScanError, TargetRefused
from scanner.models import Report
from store.base import NotFound, StoreError
from store.records import JOB_ACTIVE, new_id, pid_alive

if TYPE_CHECKING:
    from services import Services

log = logging.getLogger(__name__)

POLL_S = 0.5
HEARTBEAT_S = 5.0
STALE_AFTER_S = 600.0
MAX_PARALLEL = 4


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_started(pid: int) -> float | None:
    """A process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return float(stat.rsplit(")", 1)[1].split()[19])


@dataclass(frozen=True)
class Holder:
    """Which process on which machine (and boot) holds a run."""

    host: str
    boot_id: str
    pid: int
    pid_started: float | None

    @classmethod
    def current(cls) -> Holder:
        """This process."""
        pid = os.getpid()
        return cls(socket.gethostname(), _boot_id(), pid, _pid_started(pid))

    def holds(self, run: Run) -> bool:
        """Whether ``run`` was claimed by this very process."""
        return (run.host, run.boot_id, run.pid) == (self.host, self.boot_id, self.pid)


class Scheduler:
    """Claims due slots and runs them through the services' scan runner."""

    def __init__(
        self,
        services: Services,
        store: MonitorStore,
        settings: MonitorSettings,
        *,
        channels: Mapping[str, Channel] | None = None,
        clock: Callable[[], float] = time.time,
        poll_s: float = POLL_S,
        max_parallel: int = MAX_PARALLEL,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self.services = services
        self.store = store
        self.settings = settings
        self._clock = clock
        self.poll_s = poll_s
        self.stale_after_s = stale_after_s
        self.me = Holder.current()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="monitor-run")
        self._inflight: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.deliverer = Deliverer(
            store,
            channels if channels is not None else channels_from(settings),
            owner=f"{self.me.host}:{self.me.pid}",
            clock=clock,
            pause=self._stop.wait,
        )

    # -- the loop ----------------------------------------------------------------------------
    def tick(self) -> list[Run]:
        """One pass: recover dead runs, claim every due slot and start its run."""
        self.recover()
        now = self._clock()
        claimed: list[Run] = []
        for schedule in self.store.due_schedules(now):
            run = self._claim(schedule, now)
            if run is not None:
                claimed.append(run)
        return claimed

    def _claim(self, schedule: Schedule, now: float) -> Run | None:
        cad = cadence_of(schedule.created_at, schedule.every_s, schedule.cron, schedule.tz)
        slot = cad.latest_slot(now)
        if slot is None:
            self.store.advance(schedule.id, cad.next_slot(now))
            return None
        busy = self.store.list_runs(schedule.id, status="running")
        run = Run(
            id=run_id(schedule.id, slot),
            schedule_id=schedule.id,
            due_at=slot,
            claimed_at=now,
            heartbeat_at=now,
            host=self.me.host,
            boot_id=self.me.boot_id,
            pid=self.me.pid,
            pid_started=self.me.pid_started,
        )
        if busy:
            run = dataclasses.replace(
                run,
                status="skipped",
                finished_at=now,
                error=f"The previous run ({busy[0].id}) was still going when this slot fell due.",
            )
        won = self.store.claim_run(run)
        # Whoever claimed it, the slot is spoken for: move on to the next one.
        self.store.advance(schedule.id, cad.next_slot(slot))
        if not won:
            return None
        if run.status == "running":
            with self._lock:
                self._inflight[run.id] = self._pool.submit(self._execute_safely, run, schedule)
        else:
            log.info("schedule %s: slot %s skipped", schedule.id, run.id)
        return run

    def run_forever(self) -> None:
        """Tick until :meth:`stop`; store failures are logged and ridden out."""
        while not self._stop.is_set():
            try:
                self.tick()
                self.deliverer.retry_due()
            except StoreError as exc:
                log.warning("scheduler pass skipped: %s", exc)
            except Exception:
                log.exception("scheduler pass failed")
            self._stop.wait(self.poll_s)

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(target=self.run_forever, name="monitor-scheduler")
        self._thread.daemon = True
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; runs in flight are marked interrupted and their waits end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def running(self) -> bool:
        """Whether the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run of this scheduler is in flight; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = [f for f in self._inflight.values() if not f.done()]
            if not pending:
                return True
            pending[0].exception(timeout=max(0.0, deadline - time.monotonic()))
        return False

    # -- recovery ----------------------------------------------------------------------------
    def _dead(self, run: Run, now: float) -> bool:
        if self.me.holds(run):
            with self._lock:
                return run.id not in self._inflight  # left by an earlier scheduler object
        same_machine = run.host == self.me.host and run.boot_id == self.me.boot_id
        if same_machine and run.pid is not None:
            if not pid_alive(run.pid):
                return True
            started = _pid_started(run.pid)
            known = started is not None and run.pid_started is not None
            return known and started != run.pid_started
        if run.host == self.me.host and run.boot_id != self.me.boot_id:
            return True  # the machine rebooted since
        return now - run.heartbeat_at > self.stale_after_s

    def recover(self) -> list[Run]:
        """Mark runs whose scheduler died ``interrupted``; recover their scan jobs too."""
        now = self._clock()
        marked = []
        for run in self.store.list_runs(status="running"):
            if not self._dead(run, now):
                continue
            run = dataclasses.replace(
                run,
                status="interrupted",
                finished_at=now,
                error="The scheduler running this slot stopped before it finished.",
            )
            self.store.save_run(run)
            marked.append(run)
            log.warning("run %s marked interrupted (its scheduler is gone)", run.id)
        if any(r.job_id for r in marked):
            # The runner's recovery kills nmap left by a dead process and marks its job.
            self.services.runner.recover()
        return marked

    # -- one run -----------------------------------------------------------------------------
    def _execute_safely(self, run: Run, schedule: Schedule) -> None:
        try:
            self.execute(run, schedule)
        except Exception:
            log.exception("run %s failed inside the scheduler", run.id)
            self._finish(run, "failed", error="The run failed inside ScanScribe; see the log.")
        finally:
            with self._lock:
                self._inflight.pop(run.id, None)

    def _finish(self, run: Run, status: str, **changes: object) -> Run:
        run = dataclasses.replace(run, status=status, finished_at=self._clock(), **changes)  # type: ignore[arg-type]
        self.store.save_run(run)
        return run

    def execute(self, run: Run, schedule: Schedule) -> Run:
        """Scan, diff against the previous complete report, alert when the change matches."""
        runner = self.services.runner
        owner = f"{schedule.owner or 'scheduler'} (schedule {schedule.name})"
        try:
            job = runner.submit(" ".join(schedule.targets), schedule.profile, schedule.ports, owner)
        except ScanError as exc:
            status = "refused" if isinstance(exc, TargetRefused) else "failed"
            return self._finish(run, status, error=str(exc))
        run = dataclasses.replace(run, job_id=job.id)
        self.store.save_run(run)
        last_beat = time.monotonic()
        while job.status in JOB_ACTIVE:
            if self._stop.is_set():
                return self._finish(run, "interrupted", error="The scheduler was stopped.")
            job = runner.wait(job.id, timeout=self.poll_s)
            if time.monotonic() - last_beat >= HEARTBEAT_S:
                last_beat = time.monotonic()
                run = dataclasses.replace(run, heartbeat_at=self._clock())
                self.store.save_run(run)
        if job.status != "done" or not job.report_id:
            return self._finish(run, "failed", error=job.error or f"The scan ended {job.status}.")
        report = self.services.store.get_report(job.report_id)
        run = dataclasses.replace(run, report_id=report.id)
        previous = self._previous_report(run, schedule)
        if previous is None:
            return self._finish(run, "done")  # the baseline: nothing to compare with
        run = dataclasses.replace(run, previous_report_id=previous.id)
        alert, deliveries = prepare_alert(
            schedule, run, previous, report, self._brief, self._clock()
        )
        if alert is None:
            return self._finish(run, "done")
        self.store.save_alert(alert, deliveries)
        run = self._finish(run, "done", alert_id=alert.id)
        sent = self.deliverer.deliver(deliveries, alert)
        return self._finish(run, "done", delivered=sum(d.status == "delivered" for d in sent))

    def _brief(self, schedule: Schedule, previous: Report, report: Report) -> Brief:
        if not schedule.brief_model:
            return Brief(None, "")
        return make_brief(
            self.services.store,
            self.services.llm,
            report.id,
            previous.id,
            schedule.brief_model,
            self.services.config.ollama_timeout_s,
            owner=schedule.owner,
        )

    def _previous_report(self, run: Run, schedule: Schedule) -> Report | None:
        for prev in self.store.list_runs(schedule.id, status="done"):
            if prev.due_at >= run.due_at or not prev.report_id:
                continue
            try:
                report = self.services.store.get_report(prev.report_id)
            except NotFound:
                continue  # deleted by someone: compare with the one before
            same = set(report.targets) == set(schedule.targets)
            if report.complete and same and report.profile == schedule.profile:
                return report
        return None


def prepare_alert(
    schedule: Schedule,
    run: Run,
    previous: Report,
    report: Report,
    brief: Callable[[Schedule, Report, Report], Brief],
    now: float,
) -> tuple[Alert | None, list[Delivery]]:
    """The alert a run raises (None when the change does not match ``alert_on``), with one
    pending delivery per webhook and address; ``brief`` is asked only when there is an alert."""
    d = diff_reports(previous, report)
    risky = risk_high(d, report)
    kinds = matched_kinds(d, risky, schedule.alert_on)
    if not kinds:
        return None, []
    b = brief(schedule, previous, report)
    payload = build_payload(schedule, run, d, risky, kinds, b.text, b.note)
    alert = Alert(
        id=new_id("alert"), schedule_id=schedule.id, run_id=run.id, created_at=now, payload=payload
    )
    deliveries = [
        Delivery(
            id=f"{alert.id}:{channel}:{i}",
            alert_id=alert.id,
            channel=channel,
            target=target,
            next_attempt_at=now,
        )
        for channel, targets in (("webhook", schedule.webhooks), ("email", schedule.emails))
        for i, target in enumerate(targets)
    ]
    return alert, deliveries
