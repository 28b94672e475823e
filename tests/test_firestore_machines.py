"""Firestore drills for threats 27 and 28: a scan outlives a killed Firestore; several machines
share one project without recovering or overwriting each other's records."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import config
from llm.summarize import recover_summaries
from scanner.runner import LocalRunner
from store.firestore import FirestoreStore
from store.identity import HostIdentity, boot_id
from store.sqlite import SQLiteStore
from tests.fixtures_firestore import Emulator, emulator_missing, firestore_env, free_port
from tests.fixtures_scanner import group_alive, wait_for
from tests.runner_support import (  # noqa: F401 - fixtures
    HeldScan,
    held_scan_fixture,
    lookalike_nmap_fixture,
)
from tests.store_samples import summary
from tests.test_recovery_machines import dead_pid, running_job, streaming_summary

pytestmark = pytest.mark.emulator
OUTAGE_S = 10.0
MACHINE_A = HostIdentity("machine-a", boot_id() or "boot-now")
MACHINE_B = HostIdentity("machine-b", boot_id() or "boot-now")


@pytest.fixture
def emulator_port() -> Iterator[list[Emulator]]:
    """Emulators this test starts (and may restart on the same port); all stopped at the end."""
    missing = emulator_missing()
    if missing:
        pytest.fail(f"{missing} (`make test` installs the emulator with npm ci)")
    started: list[Emulator] = []
    yield started
    for emulator in started:
        emulator.stop()


def store_on(
    host: str, db: Path, project: str, machine: HostIdentity, flush_every_s: float = 30.0
) -> FirestoreStore:
    cfg = config.load(firestore_env(host, db, project, timeout="2"))
    return FirestoreStore.from_config(
        cfg, SQLiteStore(db, host=machine), flush_every_s=flush_every_s
    )


def test_a_scan_rides_out_a_killed_firestore_and_its_report_lands(
    held_scan: HeldScan,
    emulator_port: list[Emulator],
    tmp_path: Path,
    firestore_project: str,
    test_config: config.Config,
) -> None:
    port = free_port()
    first = Emulator(port).start()
    emulator_port.append(first)
    store = store_on(first.host, tmp_path / "outbox.db", firestore_project, MACHINE_A, 0.5)
    runner = LocalRunner(store, replace(test_config, max_jobs=1))
    try:
        job = runner.submit("127.0.0.1", "quick")
        wait_for(lambda: runner.get(job.id).progress > 0, timeout=20)

        first.stop()  # killed: its data is gone with it
        killed_at = time.monotonic()
        # Progress ticks meet the outage; the job stays running and waits in the outbox.
        wait_for(lambda: store.is_pending("job", job.id), timeout=20)
        assert runner.get(job.id).status == "running"
        held_scan.release()
        ended = runner.wait(job.id, timeout=30)
        assert ended.status == "done", ended.error
        assert store.is_pending("report", ended.report_id or "")
        # The outage lasts OUTAGE_S in all (the drill's length, not a wait for a condition).
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - killed_at)))

        second = Emulator(port).start()
        emulator_port.append(second)
        # No further save is needed: the outbox is sent in the background.
        wait_for(lambda: store.pending() == [], timeout=30)
        scans = second.documents(firestore_project, "scans")
        assert list(scans) == [ended.report_id]
        jobs = second.documents(firestore_project, "scan_jobs")
        assert jobs[job.id]["fields"]["status"]["value"] == "done"
        # The worker lived through it: the next job runs and lands directly.
        after = runner.wait(runner.submit("127.0.0.1", "quick").id, timeout=30)
        assert after.status == "done", after.error
        assert after.report_id in second.documents(firestore_project, "scans")
    finally:
        runner.shutdown()
        store.close()


def test_machine_b_leaves_machine_as_live_jobs_and_summaries_alone(
    firestore_emulator: Emulator,
    firestore_project: str,
    tmp_path: Path,
    test_config: config.Config,
    lookalike_nmap: int,
) -> None:
    host = firestore_emulator.host
    a = store_on(host, tmp_path / "a.db", firestore_project, MACHINE_A)
    b = store_on(host, tmp_path / "b.db", firestore_project, MACHINE_B)
    try:
        # A's pids do not exist on B, and A's nmap group number is a live "nmap" on B.
        theirs = running_job(MACHINE_A, dead_pid(), lookalike_nmap)
        a.save_job(theirs)
        a.save_summary(streaming_summary("sum-a", "machine-a", MACHINE_A.boot_id, dead_pid()))
        own = running_job(MACHINE_B, dead_pid(), 0)
        b.save_job(own)
        b.save_summary(streaming_summary("sum-b", "machine-b", MACHINE_B.boot_id, dead_pid()))

        runner_b = LocalRunner(b, test_config)
        try:
            assert [j.id for j in runner_b.recover()] == [own.id]
        finally:
            runner_b.shutdown()
        assert recover_summaries(b) == ["sum-b"]
        assert a.get_job(theirs.id).status == "running"
        assert a.get_summary("sum-a").status == "streaming"
        assert group_alive(lookalike_nmap)
        assert b.get_job(own.id).status == "interrupted"
    finally:
        a.close()
        b.close()


def test_a_stale_copy_from_another_process_never_overwrites_a_newer_one(
    firestore_emulator: Emulator, firestore_project: str, tmp_path: Path
) -> None:
    # Process A saves while it cannot reach Firestore: its copy waits in A's outbox.
    cut_off = store_on(f"127.0.0.1:{free_port()}", tmp_path / "a.db", firestore_project, MACHINE_A)
    cut_off.save_summary(summary("sum-1", "rep-1", 10.0, "partial"))
    assert cut_off.is_pending("summary", "sum-1")
    cut_off.close()
    # Machine B finishes the same summary meanwhile, straight into Firestore.
    b = store_on(firestore_emulator.host, tmp_path / "b.db", firestore_project, MACHINE_B)
    done = summary("sum-1", "rep-1", 10.0, "partial and then complete", status="complete")
    b.save_summary(done)
    # A starts again, reaches Firestore and sends what it kept: the older copy is dropped.
    a = store_on(firestore_emulator.host, tmp_path / "a.db", firestore_project, MACHINE_A)
    try:
        assert a.pending() == []
        assert a.get_summary("sum-1") == done
        doc = firestore_emulator.documents(firestore_project, "executive_summaries")["sum-1"]
        assert doc["fields"]["text"]["value"] == "partial and then complete"
    finally:
        a.close()
        b.close()
