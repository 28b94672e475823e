"""Exactly once across processes: two ``python -m scanner scheduler`` processes share one store
and a schedule every 3 s with real nmap; one of them is killed with SIGKILL in the middle of a run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.models import Run
from monitor.storage import SQLiteMonitorStore
from scanner.runner import job_nmap_alive
from store.sqlite import SQLiteStore
from tests.fixtures_scanner import ROOT, wait_for

pytestmark = pytest.mark.nmap
EVERY_S = 3.0


def _scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "scanner", "scheduler", "--poll", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def test_two_schedulers_run_every_slot_once_even_when_one_is_killed_mid_run(
    child_env: dict[str, str], db_path: Path, tmp_path: Path, listen: Callable[[], int]
) -> None:
    env = {**child_env, "SCANSCRIBE_MIN_INTERVAL": "1s"}
    port = listen()
    added = subprocess.run(
        [
            *(sys.executable, "-m", "scanner", "schedule", "add", "--name", "every-3s"),
            *("--profile", "quick", "--ports", str(port), "--every", "3s", "--format", "json"),
            *("--", "127.0.0.1"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    sched_id = json.loads(added.stdout)["id"]
    mstore = SQLiteMonitorStore(db_path)
    store = SQLiteStore(db_path)
    a = _scheduler(env, tmp_path / "a.log")
    b = _scheduler(env, tmp_path / "b.log")
    try:

        def runs() -> list[Run]:
            return mstore.list_runs(sched_id)

        def done(pid: int | None = None) -> list[Run]:
            return [r for r in runs() if r.status == "done" and pid in (None, r.pid)]

        wait_for(lambda: len(done()) >= 4, timeout=40)
        # Kill A while a run it claimed has its nmap going.
        victim = wait_for(
            lambda: next(
                (r for r in runs() if r.pid == a.pid and r.status == "running" and r.job_id),
                None,
            ),
            timeout=40,
            every=0.02,
        )
        assert isinstance(victim, Run)
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=10)
        # B notices: the run is interrupted, and later slots keep running once each.
        wait_for(lambda: mstore.get_run(victim.id).status == "interrupted", timeout=20)
        after = len(done(b.pid))
        wait_for(lambda: len(done(b.pid)) >= after + 3, timeout=40)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (a, b):
            proc.wait(timeout=30)
    assert b.returncode == 0, (tmp_path / "b.log").read_text()[-2000:]

    every = sorted(runs(), key=lambda r: r.due_at)
    slots = [round(r.due_at - every[0].due_at, 3) for r in every]
    # Every slot from the first to the last has exactly one record: none missing, none twice.
    assert slots == [EVERY_S * i for i in range(len(every))], slots
    statuses = [r.status for r in every]
    assert set(statuses) <= {"done", "skipped", "interrupted"}, statuses
    interrupted = [r for r in every if r.status == "interrupted"]
    # The victim, and at most the run B had going when it was told to stop.
    assert victim.id in {r.id for r in interrupted}
    assert all(r.id == victim.id or r is every[-1] for r in interrupted), interrupted
    # One scan job per run that started one, never two for a slot.
    jobs = [j for j in store.list_jobs() if j.owner.endswith("(schedule every-3s)")]
    assert sorted(j.id for j in jobs) == sorted(r.job_id for r in every if r.job_id)
    assert {r.pid for r in every} <= {a.pid, b.pid}
    # The killed run's scan did not outlive it: its job is closed and its nmap is gone.
    killed_job = store.get_job(victim.job_id or "")
    assert killed_job.status in ("interrupted", "done")
    assert not job_nmap_alive(killed_job)
    mstore.close()
    store.close()
