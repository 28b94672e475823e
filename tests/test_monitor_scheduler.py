"""The scheduler with real nmap against loopback listeners that change between runs.

The scheduler's clock is injected (the slots are minutes apart), nmap and the store are real.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import config
from auth.policy import Identity
from monitor import start_background_scheduler, stop_background_scheduler
from monitor.brief import make_brief
from monitor.delivery import channels_from
from monitor.models import Run, run_id
from monitor.scheduler import Holder, Scheduler
from monitor.schedules import ScheduleSpec, create_schedule
from monitor.settings import MonitorSettings, SmtpSettings
from monitor.storage import SQLiteMonitorStore
from services import Services, build
from tests.fixtures_ollama import sample_report
from tests.fixtures_scanner import wait_for
from tests.ollama_double import ModelScript, OllamaDouble
from tests.test_monitor_helpers import SmtpServer, WebhookReceiver, parts, smtp_server, webhook

__all__ = ["smtp_server", "webhook"]

SECRET = "sched-secret"
ANA = Identity.local("ana")
T0 = 1_900_000_000.0
EVERY = 300.0

pytestmark = pytest.mark.nmap


@pytest.fixture
def mstore(db_path: Path) -> Iterator[SQLiteMonitorStore]:
    """The monitor's tables in the test database."""
    store = SQLiteMonitorStore(db_path)
    yield store
    store.close()


@pytest.fixture
def late_port() -> Iterator[tuple[int, Callable[[], None]]]:
    """A loopback port that is closed until the test opens it: (port, open)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound, not listening: nmap sees it closed
    yield int(sock.getsockname()[1]), lambda: sock.listen(16)
    sock.close()


def settings_for(smtp: SmtpServer) -> MonitorSettings:
    """Short minimum cadence, a signing secret and the loopback mail server."""
    return MonitorSettings(
        min_interval_s=1.0,
        webhook_secret=SECRET,
        smtp=SmtpSettings("127.0.0.1", smtp.controller.port, False, sender="ss@example.com"),
    )


class Clock:
    """The scheduler's idea of now, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _scheduler(
    services: Services, store: SQLiteMonitorStore, settings: MonitorSettings, clock: Clock
) -> Scheduler:
    return Scheduler(services, store, settings, channels=channels_from(settings), clock=clock)


def _tick(s: Scheduler) -> list[Run]:
    runs = s.tick()
    assert s.wait_idle(60), "the runs did not finish within 60 s"
    return runs


def test_a_port_that_opens_between_runs_raises_exactly_one_alert(
    services: Services,
    mstore: SQLiteMonitorStore,
    listen: Callable[[], int],
    late_port: tuple[int, Callable[[], None]],
    webhook: WebhookReceiver,
    smtp_server: SmtpServer,
) -> None:
    steady = listen()
    port, open_it = late_port
    settings = settings_for(smtp_server)
    clock = Clock(T0)
    spec = ScheduleSpec(
        name="loopback",
        targets="127.0.0.1",
        profile="quick",
        ports=f"{steady},{port}",
        every="5m",
        webhooks=(webhook.url,),
        emails=("soc@example.com",),
        brief_model="llama3.2",  # Ollama is down in this configuration
    )
    sched = create_schedule(
        mstore, spec, services.config, settings, gate=services.gate, who=ANA, clock=clock
    )
    scheduler = _scheduler(services, mstore, settings, clock)
    try:
        [baseline] = _tick(scheduler)
        clock.now += EVERY
        [unchanged] = _tick(scheduler)
        open_it()
        clock.now += EVERY
        started = time.monotonic()
        [changed] = _tick(scheduler)
        took = time.monotonic() - started
    finally:
        scheduler.stop()
    runs = {r.id: r for r in mstore.list_runs(sched.id)}
    assert [runs[r.id].status for r in (baseline, unchanged, changed)] == ["done"] * 3
    assert runs[baseline.id].alert_id is None and runs[unchanged.id].alert_id is None
    assert runs[changed.id].previous_report_id == runs[unchanged.id].report_id
    [alert] = mstore.list_alerts()
    assert alert.run_id == changed.id and runs[changed.id].delivered == 2
    # Exactly one POST, naming the port that opened, with a valid signature.
    [post] = webhook.posts()
    signature = "sha256=" + hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
    assert post.headers["X-ScanScribe-Signature"] == signature
    body = json.loads(post.body)
    assert [(o["address"], o["port"]) for o in body["opened"]] == [("127.0.0.1", port)]
    assert f"127.0.0.1:{port}/tcp" in body["text"] and body["schedule_name"] == "loopback"
    # Ollama is down: the alert went out without a brief, says so, and did not wait long.
    assert body["brief"] is None and "Ollama is not answering" in body["brief_note"]
    assert took < services.config.ollama_timeout_s + 30
    # And exactly one e-mail with the same port.
    [(_, rcpts, msg)] = smtp_server.messages()
    assert rcpts == ["soc@example.com"] and f"127.0.0.1 {port}/tcp" in parts(msg)[0]


def test_after_downtime_one_catch_up_run_not_one_per_missed_slot(
    services: Services, mstore: SQLiteMonitorStore, listen: Callable[[], int]
) -> None:
    settings = MonitorSettings(min_interval_s=1.0)
    clock = Clock(T0)
    spec = ScheduleSpec(name="c", targets="127.0.0.1", profile="quick", ports=str(listen()))
    spec = dataclasses.replace(spec, every="5m")
    sched = create_schedule(
        mstore, spec, services.config, settings, gate=services.gate, who=ANA, clock=clock
    )
    scheduler = _scheduler(services, mstore, settings, clock)
    try:
        _tick(scheduler)
        clock.now += 10 * EVERY + 7  # ten slots missed while nothing ran
        [catch_up] = _tick(scheduler)
        assert _tick(scheduler) == []
    finally:
        scheduler.stop()
    assert catch_up.due_at == T0 + 10 * EVERY
    assert len(mstore.list_runs(sched.id)) == 2
    assert mstore.get_schedule(sched.id).next_run == T0 + 11 * EVERY


def _holder() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def test_a_slot_due_while_the_previous_run_is_going_is_skipped_and_recorded(
    services: Services, mstore: SQLiteMonitorStore
) -> None:
    settings = MonitorSettings(min_interval_s=1.0)
    clock = Clock(T0)
    spec = ScheduleSpec(name="s", targets="127.0.0.1", profile="quick", every="5m")
    sched = create_schedule(
        mstore, spec, services.config, settings, gate=services.gate, who=ANA, clock=clock
    )
    # Another live scheduler process on this machine holds the previous slot's run.
    holder = _holder()
    try:
        me = Holder.current()
        going = Run(
            id=run_id(sched.id, T0 - EVERY),
            schedule_id=sched.id,
            due_at=T0 - EVERY,
            host=me.host,
            boot_id=me.boot_id,
            pid=holder.pid,
            pid_started=float(Path(f"/proc/{holder.pid}/stat").read_text().split()[21]),
            heartbeat_at=T0,
        )
        assert mstore.claim_run(going)
        scheduler = _scheduler(services, mstore, settings, clock)
        try:
            [skipped] = _tick(scheduler)
        finally:
            scheduler.stop()
    finally:
        holder.kill()
        holder.wait()
    assert skipped.status == "skipped" and skipped.due_at == T0
    assert mstore.get_run(skipped.id).error.startswith(f"The previous run ({going.id})")
    assert mstore.get_run(going.id).status == "running"  # the live holder's run is left alone


def test_a_run_whose_scheduler_died_is_marked_interrupted(
    services: Services, mstore: SQLiteMonitorStore
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    me = Holder.current()
    dead = Run(
        id="sched-x@1",
        schedule_id="sched-x",
        due_at=0.001,
        host=me.host,
        boot_id=me.boot_id,
        pid=gone.pid,
        pid_started=1.0,
    )
    assert mstore.claim_run(dead)
    scheduler = _scheduler(services, mstore, MonitorSettings(), Clock(T0))
    try:
        [marked] = scheduler.recover()
    finally:
        scheduler.stop()
    assert marked.id == dead.id and mstore.get_run(dead.id).status == "interrupted"


def test_targets_are_checked_against_the_scope_again_at_every_run(
    test_config: config.Config, mstore: SQLiteMonitorStore
) -> None:
    settings = MonitorSettings(min_interval_s=1.0)
    spec = ScheduleSpec(name="wide", targets="127.0.0.1", profile="quick", every="5m")
    clock = Clock(T0)
    shrunk = dataclasses.replace(test_config, scope=config.parse_scope("127.0.0.2/32"))
    svc = build(shrunk)
    sched = create_schedule(
        mstore, spec, test_config, settings, gate=svc.gate, who=ANA, clock=clock
    )
    scheduler = _scheduler(svc, mstore, settings, clock)
    try:
        [run] = _tick(scheduler)
    finally:
        scheduler.stop()
        svc.close()
    stored = mstore.get_run(run.id)
    assert stored.status == "refused" and stored.job_id is None
    assert "127.0.0.1" in stored.error and "scope" in stored.error
    assert svc.store.list_jobs() == []  # nmap never started
    assert mstore.get_schedule(sched.id).next_run == T0 + EVERY


def test_the_brief_comes_from_the_diff_prompt_and_marks_unsupported_claims(
    llm_services: Services, ollama_double: OllamaDouble
) -> None:
    old = sample_report("r-old", created_at=1_700_000_000.0)
    new = dataclasses.replace(sample_report("r-new"), created_at=1_700_000_600.0)
    llm_services.store.save_report(old)
    llm_services.store.save_report(new)
    ollama_double.models["llama3.2:latest"] = ModelScript(
        answer="Port 23/tcp on 10.0.0.5 is open. Host 10.9.9.9 looks compromised."
    )
    brief = make_brief(
        llm_services.store, llm_services.llm, "r-new", "r-old", "llama3.2", 5.0, owner="ana"
    )
    assert brief.text is not None
    assert "10.0.0.5 is open" in brief.text
    assert "10.9.9.9 [not in the scan data — verify]" in brief.text
    assert "not supported by the scan" in brief.note
    # The same path as "Summarize a diff": a saved summary of r-new against r-old.
    [saved] = llm_services.store.list_summaries("r-new")
    assert saved.base_report_id == "r-old" and saved.status == "complete"


def test_the_dashboard_runs_one_background_scheduler_unless_it_is_switched_off(
    services: Services,
    mstore: SQLiteMonitorStore,
    monkeypatch: pytest.MonkeyPatch,
    listen: Callable[[], int],
) -> None:
    monkeypatch.setenv("SCANSCRIBE_SCHEDULER", "off")
    assert start_background_scheduler(services) is None
    monkeypatch.setenv("SCANSCRIBE_SCHEDULER", "on")
    monkeypatch.setenv("SCANSCRIBE_MIN_INTERVAL", "1s")
    spec = ScheduleSpec(
        name="bg", targets="127.0.0.1", profile="quick", ports=str(listen()), every="1h"
    )
    sched = create_schedule(
        mstore,
        spec,
        services.config,
        MonitorSettings(min_interval_s=1.0),
        gate=services.gate,
        who=ANA,
    )
    first = start_background_scheduler(services)
    try:
        assert first is not None and start_background_scheduler(services) is first
        wait_for(lambda: [r.status for r in mstore.list_runs(sched.id)] == ["done"], 60)
    finally:
        stop_background_scheduler()
    assert not first.running
