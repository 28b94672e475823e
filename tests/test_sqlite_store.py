"""The embedded store alone: migrations, restarts, concurrent writers, crashes, locks, full disk."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from store import sqlite as sqlite_mod
from store.base import NotFound, StoreUnavailable
from store.serialize import hosts_to_json, record_to_dict, report_meta
from store.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore
from tests.store_samples import full_report, job, small_report, summary

ROOT = Path(__file__).resolve().parent.parent


def child(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python child process running ``code`` with the repository importable."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def integrity(db_path: Path) -> str:
    """SQLite's own verdict on the file."""
    with sqlite3.connect(db_path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


# -- schema ---------------------------------------------------------------------------------------
def test_new_file_has_the_current_schema(sqlite_store: SQLiteStore) -> None:
    assert sqlite_store.schema_version() == SCHEMA_VERSION
    assert sqlite_store.health()["schema"] == SCHEMA_VERSION


def test_migration_from_version_1_keeps_data(db_path: Path) -> None:
    report = full_report()
    with sqlite3.connect(db_path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version=1")
        conn.execute(
            "INSERT INTO reports VALUES (?,?,?,?,?,?,?)",
            (
                report.id,
                report.created_at,
                json.dumps(report_meta(report)),
                hosts_to_json(report.hosts).decode(),  # version 1 kept hosts as text
                len(report.hosts),
                report.hosts_up,
                report.open_port_count,
            ),
        )
        s = summary("sum-1", report.id, 10.0, "written by version 1", status="complete")
        conn.execute(
            "INSERT INTO summaries VALUES (?,?,?,?,?,?)",
            (s.id, s.report_id, None, s.created_at, s.status, json.dumps(record_to_dict(s))),
        )
    store = SQLiteStore(db_path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.get_report(report.id) == report
        assert store.get_summary("sum-1") == s
        assert store.list_reports()[0].summaries == 1
        store.outbox_put("summary:sum-1", "summary", "sum-1", record_to_dict(s))
        assert [i[0] for i in store.outbox_items()] == ["summary:sum-1"]
    finally:
        store.close()


def test_file_from_a_newer_version_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreUnavailable, match="newer ScanScribe"):
        SQLiteStore(db_path)


# -- restarts and concurrency ---------------------------------------------------------------------
WRITER = """
import sys
from store.sqlite import SQLiteStore
from tests.store_samples import summary, job
store = SQLiteStore(sys.argv[1])
name, count = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # start together
for i in range(count):
    store.save_summary(summary(f"{name}-{i}", "rep-1", float(i), "text " * 50))
    store.save_job(job("job-shared", 1.0, "running"))
store.close()
print("done", flush=True)
"""


def test_survives_a_process_restart(db_path: Path) -> None:
    proc = child(WRITER, str(db_path), "first", "5")
    _, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0, err
    store = SQLiteStore(db_path)
    try:
        assert {s.id for s in store.list_summaries()} == {f"first-{i}" for i in range(5)}
        assert store.get_job("job-shared").status == "running"
    finally:
        store.close()


def test_two_processes_writing_at_once_lose_nothing(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    procs = [child(WRITER, str(db_path), name, "150") for name in ("alpha", "beta")]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = SQLiteStore(db_path)
    try:
        ids = {s.id for s in store.list_summaries()}
        assert ids == {f"{n}-{i}" for n in ("alpha", "beta") for i in range(150)}
        assert [j.id for j in store.list_jobs()] == ["job-shared"]
    finally:
        store.close()


def test_threads_writing_at_once_lose_nothing(sqlite_store: SQLiteStore) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def write(name: str) -> None:
        try:
            start.wait()
            for i in range(60):
                sqlite_store.save_summary(summary(f"{name}-{i}", "rep-1", float(i), "t"))
                sqlite_store.save_job(job(f"job-{name}", 1.0, "running"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(sqlite_store.list_summaries()) == 6 * 60
    assert len(sqlite_store.list_jobs()) == 6


# -- crash, lock, full disk -----------------------------------------------------------------------
BIG_SAVER = """
import sys
from scanner.models import Host, Report, Port, Script
from store.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
blob = "".join(chr(0x41 + (i * 7919) % 26) for i in range(1_000_000))
hosts = tuple(
    Host(address=f"127.0.2.{i}", ports=(Port(80, "tcp", "open", scripts=(Script("x", blob),)),))
    for i in range(60)
)
print("saving", flush=True)
store.save_report(Report(id=sys.argv[2], hosts=hosts, created_at=5.0))
print("saved", flush=True)
"""


def test_kill_9_during_a_big_save_leaves_no_half_record(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    store.save_report(small_report("rep-before", 1.0))
    store.close()
    wal = db_path.with_name(db_path.name + "-wal")
    hit_mid_write = False
    for attempt in range(5):
        rid = f"rep-big-{attempt}"
        proc = child(BIG_SAVER, str(db_path), rid)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "saving"
        base = wal.stat().st_size if wal.exists() else 0
        deadline = time.monotonic() + 30
        # Kill once the transaction has spilled pages into the WAL: the write is under way.
        while time.monotonic() < deadline and proc.poll() is None:
            if wal.exists() and wal.stat().st_size > base + 8 * 1024 * 1024:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert integrity(db_path) == "ok"
        store = SQLiteStore(db_path)
        try:
            assert store.get_report("rep-before") == small_report("rep-before", 1.0)
            try:
                saved = store.get_report(rid)
            except NotFound:
                hit_mid_write = True
            else:  # the save finished before the kill: then it is whole
                assert len(saved.hosts) == 60
                assert all(len(h.ports[0].scripts[0].output) == 1_000_000 for h in saved.hosts)
            assert {r.id for r in store.list_reports()} <= {
                "rep-before",
                *(f"rep-big-{n}" for n in range(attempt + 1)),
            }
        finally:
            store.close()
        if hit_mid_write:
            break
    assert hit_mid_write, "every kill came after the commit; the drill proved nothing"


LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


def test_locked_file_gives_a_clear_error_and_no_half_record(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shorter busy timeout keeps the test quick; the behaviour past it is the same.
    monkeypatch.setattr(sqlite_mod, "BUSY_TIMEOUT_MS", 1000)
    store = SQLiteStore(db_path)
    store.save_report(small_report("rep-before", 1.0))
    holder = child(LOCK_HOLDER, str(db_path))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"locked by another program.*nothing was saved"):
            store.save_report(full_report("rep-locked"))
        assert time.monotonic() - started < 10
    finally:
        holder.communicate("release\n", timeout=10)
    with pytest.raises(NotFound):
        store.get_report("rep-locked")
    store.save_report(full_report("rep-locked"))
    assert store.get_report("rep-locked") == full_report("rep-locked")
    store.close()


def test_full_disk_gives_a_clear_error_and_no_half_record(sqlite_store: SQLiteStore) -> None:
    sqlite_store.save_report(small_report("rep-before", 1.0))
    # The store's own connection is capped a few pages above its size: the disk is "full".
    conn = sqlite_store._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages + 4}")
    with pytest.raises(StoreUnavailable, match=r"disk .* is full.*nothing was saved"):
        sqlite_store.save_report(small_report("rep-too-big", 2.0, hosts=2000))
    with pytest.raises(NotFound):
        sqlite_store.get_report("rep-too-big")
    assert sqlite_store.get_report("rep-before") == small_report("rep-before", 1.0)
    assert [r.id for r in sqlite_store.list_reports()] == ["rep-before"]
    conn.execute("PRAGMA max_page_count=1073741823")
    sqlite_store.save_report(small_report("rep-too-big", 2.0, hosts=2000))
    assert len(sqlite_store.get_report("rep-too-big").hosts) == 2000
    assert integrity(sqlite_store.path) == "ok"


def test_copies_of_remote_reports_are_kept_for_the_most_recently_read(
    sqlite_store: SQLiteStore,
) -> None:
    for i in range(4):
        sqlite_store.cache_report(small_report(f"rep-{i}", float(i)), keep=3)
    # Reading rep-1 again moves it to the front, so rep-2 is the one that goes next.
    sqlite_store.cache_report(small_report("rep-1", 1.0), keep=3)
    sqlite_store.cache_report(small_report("rep-4", 4.0), keep=3)
    kept = {i for i in range(5) if sqlite_store.cached_report(f"rep-{i}") is not None}
    assert kept == {1, 3, 4}
    assert sqlite_store.cached_report("rep-1") == small_report("rep-1", 1.0)
    # A report saved again with other contents replaces its copy.
    sqlite_store.cache_report(small_report("rep-4", 4.0, hosts=3))
    assert sqlite_store.cached_report("rep-4") == small_report("rep-4", 4.0, hosts=3)
    sqlite_store.drop_cached_report("rep-4")
    assert sqlite_store.cached_report("rep-4") is None


def test_copies_never_mix_with_the_reports_of_this_file(sqlite_store: SQLiteStore) -> None:
    # The same file may hold reports from an earlier SQLite-only setup: copies live apart.
    sqlite_store.save_report(small_report("rep-local", 1.0))
    for i in range(3):
        sqlite_store.cache_report(small_report(f"rep-remote-{i}", 2.0 + i), keep=1)
    assert [r.id for r in sqlite_store.list_reports()] == ["rep-local"]
    assert sqlite_store.get_report("rep-local") == small_report("rep-local", 1.0)
    assert sqlite_store.cached_report("rep-local") is None


def test_deleting_a_report_deletes_the_diff_summaries_built_on_it(
    sqlite_store: SQLiteStore,
) -> None:
    sqlite_store.save_report(small_report("rep-old", 10.0))
    sqlite_store.save_report(small_report("rep-new", 20.0))
    sqlite_store.save_summary(summary("sum-diff", "rep-new", 30.0, base_report_id="rep-old"))
    sqlite_store.save_summary(summary("sum-new", "rep-new", 31.0))
    sqlite_store.delete_report("rep-old")
    # Its base gone, the diff summary could only show every claim unsupported.
    with pytest.raises(NotFound):
        sqlite_store.get_summary("sum-diff")
    assert [s.id for s in sqlite_store.list_summaries("rep-new")] == ["sum-new"]
