"""Scan jobs: validated input in, a saved report out, with nmap kept on a short leash.

Every job is recorded in the store before nmap starts and updated until it ends. nmap runs as a
child in its own process group with a minimal environment; cancel, the wall-clock limit and app
shutdown kill the whole group, and :meth:`LocalRunner.recover` cleans up after a process that died
with jobs still running. Pages and command lines talk to the :class:`JobRunner` interface, so a
runner that hands jobs to remote workers can replace the local one without them changing.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Protocol

from config import Config
from scanner import parser
from scanner.errors import ImportRefused, NmapMissing, ScanError, TargetRefused
from scanner.models import Report
from scanner.nmapbin import install_hint, is_root, minimal_env
from scanner.probes import scoped_probes
from scanner.profiles import Profile, build_argv, get_profile
from scanner.progress import parse_progress
from scanner.targets import MAX_PORTS, Resolver, TargetSet, parse_ports, resolve_targets
from store.base import NotFound, Store, StoreError, StoreUnavailable
from store.records import JOB_ACTIVE, Job, new_id, pid_alive

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
KILL_GRACE_S = 2.0
FINAL_STATES = ("done", "failed", "cancelled", "interrupted")
# A store that cannot be written (Firestore's outbox locked, a SQLite file another program holds)
# is retried with a growing pause; a job's end is kept in memory meanwhile and never dropped.
SAVE_RETRY_FIRST_S = 0.25
SAVE_RETRY_MAX_S = 5.0
# How long a worker keeps retrying a finished job's save before it takes the next job; what is
# still unsaved then is retried every UNSAVED_RETRY_EVERY_S by an idle worker.
FINAL_SAVE_DEADLINE_S = 30.0
UNSAVED_RETRY_EVERY_S = 5.0
PROGRESS_BACKOFF_MAX_S = 30.0

# Jobs some runner of this process is handling; recover() must never touch them, even when it
# runs on another runner instance (a rebuilt services object, a test).
_LIVE_JOBS: set[str] = set()
_LIVE_LOCK = threading.Lock()


class JobRunner(Protocol):
    """What pages and command lines need from whatever runs scan jobs."""

    def submit(
        self, targets_text: str, profile: str, ports: str = "", owner: str = "", site: str = ""
    ) -> Job:
        """Validate the input, record a queued job and start it when a slot is free (on the
        workers of ``site`` where a broker is configured)."""
        ...

    def cancel(self, job_id: str) -> Job:
        """Stop a queued or running job; nmap is killed and the job is ``cancelled``."""
        ...

    def get(self, job_id: str) -> Job:
        """The job as the store has it now."""
        ...

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has ended (or the timeout passed) and return it."""
        ...

    def shutdown(self) -> None:
        """Kill every running scan and stop taking jobs."""
        ...

    def recover(self) -> list[Job]:
        """Mark jobs left running by a dead process ``interrupted`` and kill their nmap."""
        ...


def _proc_start_time(pid: int) -> float | None:
    """When a process started (epoch seconds) from /proc; None where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        btime = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _alive_since(pid: int, since: float) -> bool:
    """Whether ``pid`` is a live process that already existed at ``since`` (not a reused pid)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        # No /proc entry: on Linux the process is gone; elsewhere ask the kernel.
        return False if Path("/proc/self").exists() else pid_alive(pid)
    if state in ("Z", "X"):
        return False
    started = _proc_start_time(pid)
    return started is None or started <= since + 2.0


def is_nmap_group(pgid: int) -> bool:
    """Whether ``pgid`` leads a process group whose leader is an nmap binary."""
    try:
        argv0 = Path(f"/proc/{pgid}/cmdline").read_bytes().split(b"\0", 1)[0]
        return os.path.basename(argv0) == b"nmap" and os.getpgid(pgid) == pgid
    except (OSError, ProcessLookupError):
        return False


def job_nmap_alive(job: Job) -> bool:
    """Whether the job's recorded process group is still its nmap (not a reused pid)."""
    if not job.pgid or not is_nmap_group(job.pgid):
        return False
    started = _proc_start_time(job.pgid)
    launched = job.started_at or job.created_at
    return started is None or started <= launched + 5.0


def record_cancel(store: Store, job: Job, now: float) -> Job:
    """Save ``job`` as cancelled; whichever runner owns it reads that and stops its nmap."""
    job = replace(
        job, status="cancelled", finished_at=now, eta_s=None, error="Cancelled; nmap was stopped."
    )
    store.save_job(job)
    return job


def kill_group(pgid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after a short grace period."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        log.warning("not allowed to signal process group %d", pgid)
        return
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reaps our own child, or its zombie keeps the group alive
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait()


@dataclass
class _Handle:
    """This process's view of one job it runs."""

    job: Job
    argv: list[str]
    timeout_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None
    stop_reason: str | None = None


class LocalRunner:
    """Runs scan jobs in worker threads of this process, at most ``config.max_jobs`` at once."""

    def __init__(
        self,
        store: Store,
        config: Config,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.time,
        root: Callable[[], bool] = is_root,
        *,
        final_save_deadline_s: float = FINAL_SAVE_DEADLINE_S,
        unsaved_retry_s: float = UNSAVED_RETRY_EVERY_S,
        launcher: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        # A program placed before nmap's argv that execs it (a worker uses setpriv --pdeathsig).
        self._launcher = launcher
        self._final_save_deadline_s = final_save_deadline_s
        self._unsaved_retry_s = unsaved_retry_s
        self._root = root
        self.config = config
        self._resolver = resolver
        self._clock = clock
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._handles: dict[str, _Handle] = {}
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._closed = False
        self._child_wall: dict[str, float] = {}
        # Jobs (and their reports) that ended while the store could not be written.
        self._unsaved: dict[str, tuple[Job, Report | None]] = {}
        self._unsaved_lock = threading.Lock()
        self._closing = threading.Event()
        atexit.register(self.shutdown)

    # -- the JobRunner interface -------------------------------------------------------------
    def submit(
        self, targets_text: str, profile: str, ports: str = "", owner: str = "", site: str = ""
    ) -> Job:
        """Validate everything first; only then record the job as queued and schedule it."""
        if site:
            raise TargetRefused(
                f"Site {site!r} refused: no broker is configured (SCANSCRIBE_BROKER), so scans "
                "run on this machine. Leave the site out, or configure the broker and workers."
            )
        prof, targets, port_spec, argv = self._prepare(targets_text, profile, ports)
        job = Job(
            id=new_id("job"),
            targets=targets.tokens,
            profile=prof.id,
            ports=port_spec,
            status="queued",
            owner=owner or self.config.user,
            created_at=self._clock(),
            runner_pid=os.getpid(),
            runner_machine=self.store.host.machine_id,
            runner_boot=self.store.host.boot_id,
        )
        self._enqueue(_Handle(job=job, argv=argv, timeout_s=self._timeout(prof)))
        log.info("job %s queued: %s %s", job.id, prof.id, " ".join(targets.addresses))
        return job

    def adopt(self, job: Job, targets_text: str) -> Job:
        """Run a job another process recorded (a dashboard that queued it for this worker) in
        the calling thread, and return it as it ended.

        ``targets_text`` is checked against this runner's own scope and the argv is built from
        this runner's own profile table, whatever the sender allowed; a refusal raises before
        nmap starts.
        """
        prof, _targets, _ports, argv = self._prepare(targets_text, job.profile, job.ports)
        job = replace(
            job,
            runner_pid=os.getpid(),
            runner_machine=self.store.host.machine_id,
            runner_boot=self.store.host.boot_id,
        )
        handle = _Handle(job=job, argv=argv, timeout_s=self._timeout(prof))
        with self._lock:
            if self._closed:
                raise ScanError("The scan runner has shut down; restart it to scan again.")
            self._handles[job.id] = handle
        with _LIVE_LOCK:
            _LIVE_JOBS.add(job.id)
        self._work_on(job.id)
        return handle.job

    def _prepare(
        self, targets_text: str, profile: str, ports: str
    ) -> tuple[Profile, TargetSet, str, list[str]]:
        """Check the profile, targets and ports; build the argv. Raises before nmap exists."""
        prof = get_profile(profile)
        if prof.needs_root and not self._root():
            raise TargetRefused(
                f"Profile {prof.id!r} refused: it needs root for raw packets. "
                "Run ScanScribe as root or pick a profile that does not need it."
            )
        targets = resolve_targets(
            targets_text, self.config.scope, self.config.max_targets, self._resolver
        )
        port_spec = parse_ports(ports, MAX_PORTS)
        nmap = shutil.which("nmap")
        if nmap is None:
            raise NmapMissing(f"nmap is not installed. Install it with: {install_hint()}")
        root = self._root()
        # Version detection reads a copy of nmap's probes without those that leave the scope.
        probes = self.config.db_path.parent / "probes"
        versiondb = str(scoped_probes(nmap, probes)) if "-sV" in prof.args_for(root) else ""
        argv = build_argv(prof, targets, port_spec, nmap=nmap, root=root, versiondb=versiondb)
        return prof, targets, port_spec, [*self._launcher, *argv]

    def _enqueue(self, handle: _Handle) -> None:
        """Record a validated job as queued and hand it to a worker thread."""
        job = handle.job
        with self._lock:
            if self._closed:
                raise ScanError("The scan runner has shut down; restart the app to scan again.")
            self.store.save_job(job)
            self._handles[job.id] = handle
            with _LIVE_LOCK:
                _LIVE_JOBS.add(job.id)
            if len(self._workers) < self.config.max_jobs:
                worker = threading.Thread(
                    target=self._work, name=f"scan-worker-{len(self._workers)}", daemon=True
                )
                self._workers.append(worker)
                worker.start()
            self._queue.put(job.id)

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a queued one never starts, a running one has its nmap group killed."""
        handle = self._handles.get(job_id)
        if handle is None:
            return self._cancel_foreign(job_id)
        self._stop(handle, "cancelled")
        handle.done.wait(KILL_GRACE_S + 10)
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        """The job as the store has it now (this runner's own copy while the store is down)."""
        with self._unsaved_lock:
            kept = self._unsaved.get(job_id)
        if kept is not None:
            return kept[0]
        try:
            return self.store.get_job(job_id)
        except StoreUnavailable:
            handle = self._handles.get(job_id)
            if handle is None:
                raise
            return handle.job

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has ended (or ``timeout`` seconds passed) and return it."""
        handle = self._handles.get(job_id)
        if handle is not None:
            handle.done.wait(timeout)
            return self.get(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status in FINAL_STATES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job
            time.sleep(0.2)

    def shutdown(self) -> None:
        """Kill every running nmap group; queued and running jobs become ``interrupted``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            handles = list(self._handles.values())
            for _ in self._workers:
                self._queue.put(None)
        self._closing.set()
        for handle in handles:
            self._stop(handle, "shutdown")
        for handle in handles:
            handle.done.wait(KILL_GRACE_S + 5)
        self._retry_unsaved()
        with self._unsaved_lock:
            lost = sorted(self._unsaved)
        if lost:
            log.error("the store could not be written; the end of job(s) %s is lost", lost)
        atexit.unregister(self.shutdown)

    def unsaved(self) -> list[str]:
        """Ids of jobs that ended while the store could not be written (kept here meanwhile)."""
        with self._unsaved_lock:
            return sorted(self._unsaved)

    def recover(self) -> list[Job]:
        """Mark jobs whose process died ``interrupted`` and kill their nmap groups.

        Only this machine's jobs are judged: another machine sharing the store runs its own. A
        job from an earlier boot of this machine is dead, and its process ids now name other
        processes, so nothing is signalled for it.
        """
        recovered: list[Job] = []
        me = os.getpid()
        host = self.store.host
        for job in self.store.list_jobs(statuses=JOB_ACTIVE):
            with _LIVE_LOCK:
                if job.id in _LIVE_JOBS:
                    continue
            if not host.same_machine(job.runner_machine):
                continue
            this_boot = host.same_boot(job.runner_machine, job.runner_boot)
            owner_pid = job.runner_pid
            if (
                this_boot
                and owner_pid
                and owner_pid != me
                and _alive_since(owner_pid, job.created_at)
            ):
                continue
            if this_boot and job.pgid and job_nmap_alive(job):
                log.warning("killing nmap group %d left by job %s", job.pgid, job.id)
                kill_group(job.pgid)
            job = replace(
                job,
                status="interrupted",
                finished_at=self._clock(),
                eta_s=None,
                error="The app stopped while this scan was queued or running; it did not finish.",
            )
            self.store.save_job(job)
            recovered.append(job)
            log.info("job %s marked interrupted", job.id)
        return recovered

    # -- extras of the local runner ----------------------------------------------------------
    def child_wall_s(self, job_id: str) -> float | None:
        """How long this job's nmap child ran, in seconds (for benchmarks and the log)."""
        return self._child_wall.get(job_id)

    def _timeout(self, profile: Profile) -> float:
        return float(min(profile.timeout_s, self.config.scan_timeout_s))

    # -- internals ---------------------------------------------------------------------------
    def _cancel_foreign(self, job_id: str) -> Job:
        """Cancel a job another process runs: kill its nmap group and record the cancel."""
        job = self.get(job_id)
        if job.status not in JOB_ACTIVE:
            return job
        # Record the cancel first: the owning process reads it when its nmap dies (or at its next
        # progress update) and keeps it instead of calling the job failed.
        job = record_cancel(self.store, job, self._clock())
        # Another machine's nmap is stopped by its own runner when it reads the cancel.
        mine = self.store.host.same_boot(job.runner_machine, job.runner_boot)
        if mine and job.pgid and job_nmap_alive(job):
            kill_group(job.pgid)
        return job

    def _stop(self, handle: _Handle, reason: str) -> None:
        """Record why a job stops and kill its nmap group, if it has one yet."""
        with handle.lock:
            if handle.stop_reason is not None or handle.done.is_set():
                return
            handle.stop_reason = reason
            proc = handle.proc
            if proc is None:
                status = "cancelled" if reason == "cancelled" else "interrupted"
                handle.job = replace(
                    handle.job,
                    status=status,
                    finished_at=self._clock(),
                    error=_STOP_MESSAGES[reason].format(timeout=int(handle.timeout_s)),
                )
                if not self._try_save(handle.job):
                    self._keep(handle.job, None)
                self._finish(handle)
                return
        log.info("stopping job %s (%s)", handle.job.id, reason)
        kill_group(proc.pid, proc)

    def _finish(self, handle: _Handle) -> None:
        with self._lock:
            self._handles.pop(handle.job.id, None)
        with _LIVE_LOCK:
            _LIVE_JOBS.discard(handle.job.id)
        handle.done.set()

    def _work(self) -> None:
        """Take jobs until shutdown. Nothing one job does may end this loop: a dead worker
        would leave every later job queued for ever."""
        while True:
            try:
                job_id = self._queue.get(timeout=self._unsaved_retry_s)
            except queue.Empty:
                self._retry_unsaved()
                continue
            if job_id is None:
                return
            try:
                self._work_on(job_id)
                self._retry_unsaved()
            except Exception:
                log.exception("the scan worker caught an error from job %s; it goes on", job_id)

    def _work_on(self, job_id: str) -> None:
        handle = self._handles.get(job_id)
        if handle is None or handle.done.is_set():
            return
        try:
            self._run(handle)
        except Exception:
            log.exception("job %s failed inside the runner", job_id)
            self._save_final(
                handle,
                status="failed",
                error="The scan failed inside ScanScribe; the details are in the app's log.",
            )
        finally:
            try:
                if handle.proc is not None and handle.proc.poll() is None:
                    kill_group(handle.proc.pid, handle.proc)
            finally:
                self._finish(handle)

    def _save_final(self, handle: _Handle, report: Report | None = None, **changes: object) -> None:
        handle.job = replace(handle.job, finished_at=self._clock(), eta_s=None, **changes)  # type: ignore[arg-type]
        self._land(handle.job, report)

    # -- riding out a store that cannot be written ---------------------------------------------
    def _try_save(self, job: Job) -> bool:
        """Save a job once; a store failure is logged, never raised (the job lives in memory)."""
        try:
            self.store.save_job(job)
        except StoreError as exc:
            log.warning("job %s: could not save its state (will retry): %s", job.id, exc)
            return False
        return True

    def _land(self, job: Job, report: Report | None) -> None:
        """Save a job's end (and its report) with retries; keep it for later if the store
        stays unwritable past FINAL_SAVE_DEADLINE_S."""
        deadline = time.monotonic() + self._final_save_deadline_s
        delay = SAVE_RETRY_FIRST_S
        while True:
            try:
                # The report first: a job marked done must name a report that exists.
                if report is not None:
                    self.store.save_report(report)
                    report = None
                self.store.save_job(job)
                return
            except StoreError as exc:
                log.warning("job %s: could not save its end (will retry): %s", job.id, exc)
            if time.monotonic() + delay > deadline or self._closing.wait(delay):
                break
            delay = min(delay * 2, SAVE_RETRY_MAX_S)
        self._keep(job, report)

    def _keep(self, job: Job, report: Report | None) -> None:
        with self._unsaved_lock:
            self._unsaved[job.id] = (job, report)
        log.error(
            "job %s: the store cannot be written; its end is kept in memory and retried every %g s",
            job.id,
            self._unsaved_retry_s,
        )

    def _retry_unsaved(self) -> None:
        """Try once more to save every job end kept in memory."""
        with self._unsaved_lock:
            kept = list(self._unsaved.items())
        for job_id, (job, report) in kept:
            try:
                if report is not None:
                    self.store.save_report(report)
                    with self._unsaved_lock:
                        self._unsaved[job_id] = (job, None)
                self.store.save_job(job)
            except StoreError as exc:
                log.warning("job %s: its end still cannot be saved: %s", job_id, exc)
                continue
            with self._unsaved_lock:
                self._unsaved.pop(job_id, None)
            log.info("job %s: its end is saved now", job_id)

    def _run(self, handle: _Handle) -> None:
        with handle.lock:
            if handle.stop_reason is not None:
                return
            if self._cancelled_elsewhere(handle.job.id):
                handle.job = self.store.get_job(handle.job.id)
                return
            handle.job = replace(handle.job, status="running", started_at=self._clock())
            spawned = time.monotonic()
            try:
                proc = subprocess.Popen(
                    handle.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=minimal_env(),
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                log.error("cannot start nmap for job %s: %s", handle.job.id, exc)
                self._save_final(
                    handle,
                    status="failed",
                    error=f"nmap could not be started. Install it with: {install_hint()}",
                )
                return
            handle.proc = proc
            # start_new_session makes nmap the leader of its own group: pgid == pid.
            handle.job = replace(handle.job, pid=proc.pid, pgid=proc.pid, runner_pid=os.getpid())
            self._try_save(handle.job)
        timer = threading.Timer(handle.timeout_s, self._stop, (handle, "timeout"))
        timer.daemon = True
        timer.start()
        assert proc.stdout is not None and proc.stderr is not None
        drain = threading.Thread(target=_log_stderr, args=(handle.job.id, proc.stderr), daemon=True)
        drain.start()
        try:
            data = self._read_output(handle, proc.stdout)
            returncode = proc.wait()
        finally:
            timer.cancel()
        self._child_wall[handle.job.id] = time.monotonic() - spawned
        if len(self._child_wall) > 256:
            self._child_wall.pop(next(iter(self._child_wall)))
        drain.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
        self._conclude(handle, data, returncode)

    def _read_output(self, handle: _Handle, stream: IO[bytes]) -> bytes:
        """Collect nmap's XML while turning its task progress into job updates (about 1/s)."""
        chunks: list[bytes] = []
        next_save = 0.0
        backoff = PROGRESS_EVERY_S
        for line in stream:
            chunks.append(line)
            if b"<task" not in line:
                continue
            prog = parse_progress(line)
            if prog is None:
                continue
            handle.job = replace(
                handle.job, progress=prog.percent, eta_s=prog.remaining_s, task=prog.task
            )
            if time.monotonic() < next_save:
                continue
            if self._cancelled_elsewhere(handle.job.id):
                self._stop(handle, "cancelled")
                saved = True
            else:
                saved = self._try_save(handle.job)
            # A store that failed is asked again less and less often: each try may block for
            # the store's whole timeout, and nmap's output must keep being read meanwhile.
            backoff = PROGRESS_EVERY_S if saved else min(backoff * 2, PROGRESS_BACKOFF_MAX_S)
            next_save = time.monotonic() + backoff
        return b"".join(chunks)

    def _cancelled_elsewhere(self, job_id: str) -> bool:
        """Whether another process recorded a cancel of this job (it shares the store)."""
        try:
            return self.store.get_job(job_id).status == "cancelled"
        except NotFound:
            return False
        except StoreError as exc:
            log.info("job %s: could not check for a cancel from elsewhere: %s", job_id, exc)
            return False

    def _conclude(self, handle: _Handle, data: bytes, returncode: int) -> None:
        reason = handle.stop_reason
        if reason is not None:
            status = {"cancelled": "cancelled", "timeout": "failed"}.get(reason, "interrupted")
            self._save_final(
                handle,
                status=status,
                error=_STOP_MESSAGES[reason].format(timeout=int(handle.timeout_s)),
            )
            return
        if returncode != 0:
            try:
                stored = self.store.get_job(handle.job.id)
            except StoreError:
                stored = handle.job
            if stored.status == "cancelled":  # cancelled from another process
                handle.job = stored
                return
            log.error("job %s: nmap exited with code %d", handle.job.id, returncode)
            self._save_final(
                handle,
                status="failed",
                error=f"nmap stopped with an error (exit code {returncode}); "
                "the details are in the app's log.",
            )
            return
        job = handle.job
        try:
            report = parser.parse_report(
                data,
                report_id=new_id("report"),
                source="scan",
                targets=job.targets,
                profile=job.profile,
                owner=job.owner,
            )
        except ImportRefused as exc:
            log.error("job %s: nmap's output could not be read: %s", job.id, exc)
            self._save_final(
                handle,
                status="failed",
                error="nmap's output could not be read; the details are in the app's log.",
            )
            return
        if not report.created_at:
            report = replace(report, created_at=self._clock())
        self._save_final(
            handle,
            report,
            status="done",
            progress=100.0,
            task="done",
            report_id=report.id,
            error="",
        )
        log.info("job %s done: report %s", job.id, report.id)


_STOP_MESSAGES = {
    "cancelled": "Cancelled; nmap was stopped.",
    "timeout": "The scan passed its time limit of {timeout} s; nmap was stopped.",
    "shutdown": "The app shut down while this scan was queued or running; nmap was stopped.",
}


def _log_stderr(job_id: str, stream: IO[bytes]) -> None:
    """nmap's stderr belongs in the log only: it can quote files and must not reach users."""
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            log.warning("nmap (job %s): %s", job_id, line[:500])
