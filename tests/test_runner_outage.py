"""Scans ride out a store that cannot be written, and a scan worker never dies (threat 27)."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import config
from scanner.runner import LocalRunner
from store.records import Job
from store.sqlite import BUSY_TIMEOUT_MS, SQLiteStore
from tests.fixtures_scanner import wait_for
from tests.runner_support import HeldScan, held_scan_fixture  # noqa: F401 - a fixture


@pytest.fixture
def one_slot_runner(sqlite_store: SQLiteStore, scan_config: config.Config) -> Iterator[LocalRunner]:
    """A runner with one worker, so a second job runs only if that worker survived the first."""
    r = LocalRunner(sqlite_store, replace(scan_config, max_jobs=1))
    yield r
    r.shutdown()


def progress_recorded(store: SQLiteStore, job_id: str) -> Callable[[], Job | None]:
    def check() -> Job | None:
        job = store.get_job(job_id)
        return job if job.status == "running" and job.progress > 0 else None

    return check


def log_says(caplog: pytest.LogCaptureFixture, text: str) -> Callable[[], bool]:
    return lambda: any(text in r.getMessage() for r in caplog.records)


def test_a_scan_outlives_a_lock_held_past_the_busy_timeout_and_the_next_job_runs(
    held_scan: HeldScan,
    one_slot_runner: LocalRunner,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = one_slot_runner
    store = runner.store
    assert isinstance(store, SQLiteStore)
    first = runner.submit("127.0.0.1", "quick")
    second = runner.submit("127.0.0.1", "quick")
    wait_for(progress_recorded(store, first.id), timeout=20)

    blocker = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    caplog.set_level(logging.WARNING, logger="scanner.runner")
    locked_at = time.monotonic()
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        # A progress save waits out the busy timeout and fails; the scan goes on.
        wait_for(log_says(caplog, "could not save its state"), timeout=BUSY_TIMEOUT_MS / 1000 + 10)
        assert runner.get(first.id).status == "running"
        held_scan.release()
        # The end of the scan cannot be saved either; it is retried, not dropped.
        wait_for(log_says(caplog, "could not save its end"), timeout=BUSY_TIMEOUT_MS / 1000 + 10)
        assert time.monotonic() - locked_at > BUSY_TIMEOUT_MS / 1000
        assert store.get_job(first.id).status == "running"  # nothing landed while locked
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    done = runner.wait(first.id, timeout=60)
    assert done.status == "done", done.error
    assert store.get_job(first.id).status == "done"
    report = store.get_report(done.report_id or "")
    host = report.host("127.0.0.1")
    assert host is not None and [p.port for p in host.open_ports] == [held_scan.port]
    # The single worker lived through it and ran the job that waited behind.
    after = runner.wait(second.id, timeout=60)
    assert after.status == "done", after.error
    assert store.get_job(second.id).report_id
    assert runner.unsaved() == []


def test_a_job_end_the_store_refuses_for_long_is_kept_and_saved_later(
    held_scan: HeldScan,
    sqlite_store: SQLiteStore,
    scan_config: config.Config,
    db_path: Path,
) -> None:
    runner = LocalRunner(sqlite_store, scan_config, final_save_deadline_s=0.5, unsaved_retry_s=0.2)
    try:
        job = runner.submit("127.0.0.1", "quick")
        wait_for(progress_recorded(sqlite_store, job.id), timeout=20)
        blocker = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            held_scan.release()
            wait_for(lambda: runner.unsaved() == [job.id], timeout=BUSY_TIMEOUT_MS / 1000 + 10)
            kept = runner.get(job.id)
            assert kept.status == "done" and kept.report_id  # the runner knows how it ended
            assert sqlite_store.get_job(job.id).status == "running"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_for(lambda: runner.unsaved() == [], timeout=BUSY_TIMEOUT_MS / 1000 + 10)
        saved = sqlite_store.get_job(job.id)
        assert saved.status == "done"
        assert sqlite_store.get_report(saved.report_id or "").hosts[0].address == "127.0.0.1"
    finally:
        runner.shutdown()
