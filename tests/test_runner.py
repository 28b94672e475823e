"""The job runner against the real nmap binary and listeners on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import config
from scanner.errors import TargetRefused
from scanner.runner import LocalRunner
from store.records import Job, new_id
from store.sqlite import SQLiteStore
from tests.fixtures_scanner import PYTHON, ROOT, group_alive, nmap_environ, wait_for

pytestmark = pytest.mark.nmap


def running_with_pid(runner: LocalRunner, job_id: str) -> Callable[[], Job | None]:
    def check() -> Job | None:
        job = runner.get(job_id)
        return job if job.status == "running" and job.pgid else None

    return check


def test_open_and_closed_ports_are_found(
    runner: LocalRunner, listen: Callable[..., int], closed_port: int
) -> None:
    open_port = listen()
    job = runner.submit("127.0.0.1", "quick", f"{open_port},{closed_port}")
    assert job.status == "queued"
    assert runner.get(job.id).id == job.id  # recorded before nmap started
    done = runner.wait(job.id, timeout=60)
    assert done.status == "done", done.error
    assert done.progress == 100.0
    assert done.pgid and not group_alive(done.pgid)
    assert done.started_at and done.finished_at and done.finished_at >= done.started_at
    report = runner.store.get_report(done.report_id or "")
    assert report.profile == "quick"
    assert report.targets == ("127.0.0.1",)
    host = report.host("127.0.0.1")
    assert host is not None and host.status == "up" and not host.timed_out
    states = {p.port: p.state for p in host.ports}
    assert states[open_port] == "open"
    assert states.get(closed_port, "closed") == "closed"
    assert [p.port for p in host.open_ports] == [open_port]


def test_ipv6_loopback_is_scanned_with_dash_six(
    runner: LocalRunner, listen: Callable[..., int]
) -> None:
    port = listen("::1")
    job = runner.wait(runner.submit("::1", "quick", str(port)).id, timeout=60)
    assert job.status == "done", job.error
    host = runner.store.get_report(job.report_id or "").host("::1")
    assert host is not None and [p.port for p in host.open_ports] == [port]


def test_root_profiles_are_refused_without_root(
    sqlite_store: SQLiteStore, scan_config: config.Config
) -> None:
    r = LocalRunner(sqlite_store, scan_config, root=lambda: False)
    try:
        for profile in ("deep", "udp"):
            with pytest.raises(TargetRefused, match="needs root"):
                r.submit("127.0.0.1", profile)
    finally:
        r.shutdown()
    assert sqlite_store.list_jobs() == []


def test_service_detection_names_a_real_http_server(runner: LocalRunner, http_port: int) -> None:
    job = runner.wait(runner.submit("127.0.0.1", "standard", str(http_port)).id, timeout=90)
    assert job.status == "done", job.error
    port = runner.store.get_report(job.report_id or "").hosts[0].ports[0]
    assert (port.port, port.state, port.service) == (http_port, "open", "http")
    assert "Python" in f"{port.product} {port.version} {port.extrainfo}"


def test_progress_env_and_cancel_of_a_running_scan(
    runner: LocalRunner,
    http_port: int,
    silent_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCANSCRIBE_TEST_SECRET", "hunter2-do-not-leak")
    job = runner.submit("127.0.0.1", "standard", f"{http_port},{silent_port}")
    running = wait_for(running_with_pid(runner, job.id), timeout=20)
    assert isinstance(running, Job) and running.pgid == running.pid
    env = nmap_environ(running.pid or 0)
    assert "SCANSCRIBE_TEST_SECRET" not in env
    assert "hunter2-do-not-leak" not in "".join(env.values())
    assert set(env) <= {"PATH", "LANG", "HOME"}

    # The HTTP port is identified quickly; the silent one keeps the service scan at 50 %.
    midway = wait_for(
        lambda: (j := runner.get(job.id)).status == "running" and 0 < j.progress < 100 and j,
        timeout=40,
    )
    assert isinstance(midway, Job) and midway.task == "Service scan"
    assert midway.eta_s is not None

    cancelled = runner.cancel(job.id)
    assert cancelled.status == "cancelled"
    assert "Cancelled" in cancelled.error
    assert not group_alive(running.pgid or 0)
    assert cancelled.report_id is None


def test_the_wall_clock_limit_kills_the_scan(
    sqlite_store: SQLiteStore, scan_config: config.Config, silent_port: int
) -> None:
    r = LocalRunner(sqlite_store, replace(scan_config, scan_timeout_s=1))
    try:
        started = time.monotonic()
        job = r.submit("127.0.0.1", "standard", str(silent_port))
        pgid = (wait_for(running_with_pid(r, job.id), timeout=20)).pgid  # type: ignore[union-attr]
        done = r.wait(job.id, timeout=30)
        assert time.monotonic() - started < 10
        assert done.status == "failed"
        assert "time limit of 1 s" in done.error
        assert not group_alive(pgid)
    finally:
        r.shutdown()


def test_concurrent_scans_never_mix_results(
    runner: LocalRunner, listen: Callable[..., int]
) -> None:
    port_a = listen("127.0.0.2")
    port_b = listen("127.0.0.3")
    ports = f"{port_a},{port_b}"
    jobs = []
    for _ in range(3):
        jobs.append(("127.0.0.2", port_a, runner.submit("127.0.0.2", "quick", ports)))
        jobs.append(("127.0.0.3", port_b, runner.submit("127.0.0.3", "quick", ports)))
    for address, own_port, job in jobs:
        done = runner.wait(job.id, timeout=60)
        assert done.status == "done", done.error
        report = runner.store.get_report(done.report_id or "")
        assert [h.address for h in report.hosts] == [address]
        assert [p.port for p in report.hosts[0].open_ports] == [own_port]
    assert len({runner.get(j.id).report_id for _a, _p, j in jobs}) == len(jobs)


def test_the_job_limit_queues_the_rest(
    sqlite_store: SQLiteStore,
    scan_config: config.Config,
    silent_port: int,
    listen: Callable[..., int],
) -> None:
    r = LocalRunner(sqlite_store, replace(scan_config, max_jobs=1))
    try:
        slow = r.submit("127.0.0.1", "standard", str(silent_port))
        wait_for(running_with_pid(r, slow.id), timeout=20)
        waiting = r.submit("127.0.0.1", "quick", str(listen()))
        dropped = r.submit("127.0.0.1", "quick", str(listen()))
        assert r.get(waiting.id).status == "queued"
        gone = r.cancel(dropped.id)
        assert gone.status == "cancelled" and gone.pid is None
        r.cancel(slow.id)
        done = r.wait(waiting.id, timeout=60)
        assert done.status == "done", done.error
        assert r.get(dropped.id).status == "cancelled"
    finally:
        r.shutdown()


def test_shutdown_kills_running_scans(
    sqlite_store: SQLiteStore, scan_config: config.Config, silent_port: int
) -> None:
    r = LocalRunner(sqlite_store, scan_config)
    job = r.submit("127.0.0.1", "standard", str(silent_port))
    pgid = (wait_for(running_with_pid(r, job.id), timeout=20)).pgid  # type: ignore[union-attr]
    r.shutdown()
    after = sqlite_store.get_job(job.id)
    assert after.status == "interrupted"
    assert not group_alive(pgid)
    with pytest.raises(Exception, match="shut down"):
        r.submit("127.0.0.1", "quick", "1")


CHILD = textwrap.dedent(
    """
    import sys, time
    import services
    svc = services.build()
    job = svc.runner.submit("127.0.0.1", "standard", sys.argv[1])
    deadline = time.monotonic() + 20
    while not svc.store.get_job(job.id).pgid and time.monotonic() < deadline:
        time.sleep(0.05)
    print(job.id, svc.store.get_job(job.id).pgid, flush=True)
    sys.stdin.read()
    """
)


def test_jobs_of_a_killed_app_are_interrupted_and_nmap_killed(
    silent_port: int, child_env: dict[str, str], db_path: Path
) -> None:
    app = subprocess.Popen(
        [PYTHON, "-c", CHILD, str(silent_port)],
        cwd=ROOT,
        env=child_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        job_id, pgid_text = app.stdout.readline().split()
        pgid = int(pgid_text)
        assert group_alive(pgid)
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        for stream in (app.stdin, app.stdout):
            if stream:
                stream.close()
    store = SQLiteStore(db_path)
    try:
        assert store.get_job(job_id).status == "running"  # what the dead app left behind
        out = subprocess.run(
            [PYTHON, "-m", "scanner", "jobs", "--format", "json"],
            cwd=ROOT,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        listed = {j["id"]: j for j in json.loads(out.stdout)}
        assert listed[job_id]["status"] == "interrupted"
        assert store.get_job(job_id).status == "interrupted"
        assert not group_alive(pgid)
    finally:
        store.close()


def test_recover_leaves_jobs_of_live_processes_alone(
    sqlite_store: SQLiteStore, scan_config: config.Config
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    long_ago = time.time() - 3600
    live_other = Job(
        new_id("job"),
        ("127.0.0.1",),
        "quick",
        status="running",
        runner_pid=1,
        created_at=time.time(),
    )
    dead_owner = Job(
        new_id("job"),
        ("127.0.0.1",),
        "quick",
        status="running",
        runner_pid=dead.pid,
        created_at=long_ago,
    )
    mine_unknown = Job(
        new_id("job"),
        ("127.0.0.1",),
        "quick",
        status="queued",
        runner_pid=os.getpid(),
        created_at=time.time(),
    )
    finished = Job(
        new_id("job"),
        ("127.0.0.1",),
        "quick",
        status="done",
        runner_pid=dead.pid,
        created_at=long_ago,
    )
    for job in (live_other, dead_owner, mine_unknown, finished):
        sqlite_store.save_job(job)
    r = LocalRunner(sqlite_store, scan_config)
    try:
        recovered = {j.id for j in r.recover()}
    finally:
        r.shutdown()
    assert recovered == {dead_owner.id, mine_unknown.id}
    assert sqlite_store.get_job(live_other.id).status == "running"
    assert sqlite_store.get_job(dead_owner.id).status == "interrupted"
    assert sqlite_store.get_job(finished.id).status == "done"


def test_nmap_errors_stay_in_the_log(
    runner: LocalRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = tmp_path / "bin" / "nmap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'root:x:0:0:root:/root:/bin/bash' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    with caplog.at_level(logging.WARNING, logger="scanner.runner"):
        job = runner.wait(runner.submit("127.0.0.1", "quick").id, timeout=30)
    assert job.status == "failed"
    assert "root:x:0:0" not in job.error
    assert "exit code 1" in job.error
    assert "root:x:0:0" in caplog.text
