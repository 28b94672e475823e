"""Several machines on one store: each recovers only its own jobs and summaries (threat 28)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import config
from llm.summarize import recover_summaries
from scanner.runner import LocalRunner
from store.base import Store
from store.identity import FALLBACK_NAME, HostIdentity, boot_id, machine_id
from store.records import Job, Summary, new_id
from store.sqlite import SQLiteStore
from tests.fixtures_scanner import group_alive
from tests.runner_support import lookalike_nmap_fixture  # noqa: F401 - a fixture

MACHINE_A = HostIdentity("machine-a", boot_id() or "boot-now")
MACHINE_B = HostIdentity("machine-b", boot_id() or "boot-now")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def running_job(host: HostIdentity, runner_pid: int, pgid: int) -> Job:
    now = time.time()
    return Job(
        new_id("job"),
        ("127.0.0.1",),
        "quick",
        status="running",
        created_at=now,
        started_at=now,
        pid=pgid,
        pgid=pgid,
        runner_pid=runner_pid,
        runner_machine=host.machine_id,
        runner_boot=host.boot_id,
    )


def streaming_summary(summary_id: str, machine: str, boot: str, writer_pid: int) -> Summary:
    return Summary(
        id=summary_id,
        report_id="rep-1",
        model="m",
        audience="executive",
        text="partial",
        created_at=1.0,
        writer_pid=writer_pid,
        writer_machine=machine,
        writer_boot=boot,
    )


def recover_jobs(store: Store, cfg: config.Config) -> list[str]:
    runner = LocalRunner(store, cfg)
    try:
        return [j.id for j in runner.recover()]
    finally:
        runner.shutdown()


# -- on one shared SQLite file ------------------------------------------------------------------
def test_another_machines_job_is_left_alone_and_no_local_group_is_signalled(
    db_path: Path, test_config: config.Config, lookalike_nmap: int
) -> None:
    # Machine A's runner pid does not exist here, and its nmap's group number is taken here.
    theirs = running_job(MACHINE_A, dead_pid(), lookalike_nmap)
    a = SQLiteStore(db_path, host=MACHINE_A)
    a.save_job(theirs)
    b = SQLiteStore(db_path, host=MACHINE_B)
    try:
        assert recover_jobs(b, test_config) == []
        assert b.get_job(theirs.id).status == "running"
        assert group_alive(lookalike_nmap)
    finally:
        a.close()
        b.close()


def test_a_job_from_an_earlier_boot_is_interrupted_and_no_group_is_signalled(
    sqlite_store: SQLiteStore, test_config: config.Config, lookalike_nmap: int
) -> None:
    here = sqlite_store.host
    earlier = HostIdentity(here.machine_id, "an-earlier-boot")
    # After a reboot the recorded pids name other processes: pid 1 is alive, yet not the owner.
    old = running_job(earlier, 1, lookalike_nmap)
    sqlite_store.save_job(old)
    assert recover_jobs(sqlite_store, test_config) == [old.id]
    assert sqlite_store.get_job(old.id).status == "interrupted"
    assert group_alive(lookalike_nmap)


def test_this_machines_dead_job_in_this_boot_is_still_recovered(
    sqlite_store: SQLiteStore, test_config: config.Config
) -> None:
    mine = running_job(sqlite_store.host, dead_pid(), 0)
    sqlite_store.save_job(mine)
    assert recover_jobs(sqlite_store, test_config) == [mine.id]


def test_submitted_jobs_record_machine_and_boot(
    sqlite_store: SQLiteStore, test_config: config.Config
) -> None:
    runner = LocalRunner(sqlite_store, test_config)
    try:
        job = runner.submit("127.0.0.1", "quick", "1")
        runner.cancel(job.id)
    finally:
        runner.shutdown()
    saved = sqlite_store.get_job(job.id)
    assert (saved.runner_machine, saved.runner_boot) == (
        sqlite_store.host.machine_id,
        sqlite_store.host.boot_id,
    )
    assert saved.runner_machine and saved.runner_boot


def test_summaries_are_recovered_only_by_their_own_machine_and_boot(db_path: Path) -> None:
    a = SQLiteStore(db_path, host=MACHINE_A)
    b = SQLiteStore(db_path, host=MACHINE_B)
    try:
        a.save_summary(streaming_summary("a-live", "machine-a", MACHINE_A.boot_id, dead_pid()))
        b.save_summary(streaming_summary("b-dead", "machine-b", MACHINE_B.boot_id, dead_pid()))
        b.save_summary(streaming_summary("b-old-boot", "machine-b", "an-earlier-boot", 1))
        b.save_summary(streaming_summary("b-live", "machine-b", MACHINE_B.boot_id, 1))
        assert sorted(recover_summaries(b)) == ["b-dead", "b-old-boot"]
        assert b.get_summary("a-live").status == "streaming"
        assert b.get_summary("b-live").status == "streaming"
        assert b.get_summary("b-old-boot").status == "interrupted"
    finally:
        a.close()
        b.close()


# -- the machine id -----------------------------------------------------------------------------
def test_machine_id_is_the_systems_or_the_override(tmp_path: Path) -> None:
    system = tmp_path / "machine-id"
    system.write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    assert machine_id(tmp_path, {}, system) == "3d1219c7c4c5404aaa1f6d2a48adfda4"
    assert machine_id(tmp_path, {"SCANSCRIBE_MACHINE_ID": "lab-2"}, system) == "lab-2"
    with pytest.raises(config.ConfigError, match="SCANSCRIBE_MACHINE_ID"):
        machine_id(tmp_path, {"SCANSCRIBE_MACHINE_ID": "a b\n"}, system)


def test_without_a_system_id_one_is_kept_beside_the_database(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-machine-id"
    first = machine_id(tmp_path / "data", {}, missing)
    assert (tmp_path / "data" / FALLBACK_NAME).read_text().strip() == first
    assert machine_id(tmp_path / "data", {}, missing) == first  # stable across runs
    assert machine_id(tmp_path / "other", {}, missing) != first
