"""Scanner workers on a real redis-server: routing by site scope, refusals, heartbeats, JSON only.

Workers are real ``python -m scanner worker`` processes on a password-protected redis-server
bound to loopback, sharing the test's SQLite file. Each site's scope is its own slice of
127.0.0.0/8, where the tests open real listeners.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import config
from auth.policy import Identity
from config import ConfigError
from monitor.scheduler import Scheduler
from monitor.schedules import ScheduleSpec, create_schedule
from monitor.settings import MonitorSettings
from monitor.storage import SQLiteMonitorStore
from scanner.errors import TargetRefused
from scanner.runner import LocalRunner
from services import Services, build
from store.records import Job, new_id
from store.sqlite import SQLiteStore
from tests.fixtures_firestore import Emulator, firestore_env, open_firestore
from tests.fixtures_scanner import PYTHON, ROOT, group_alive, wait_for
from tests.fixtures_workers import Fleet, RedisServer, nmap_processes
from tests.netlab import NetLab
from tests.runner_support import HeldScan
from workers.app import TASK_SCAN, make_app, queue_for
from workers.board import FirestoreBoard, Heartbeat, SQLiteBoard
from workers.dispatch import BrokerRunner, task_kwargs
from workers.errors import BrokerUnavailable, NoWorker
from workers.ledger import Entry, Ledger, reap
from workers.routing import choose_site
from workers.settings import load_broker, parse_broker
from workers.worker import refusal

ALPHA, BETA = "127.0.1.0/24", "127.0.2.0/24"


def _listener(host: str) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(16)
    return s


@pytest.fixture
def listeners() -> Iterator[Callable[[str], int]]:
    """Open a listener on a loopback address; returns its port."""
    socks: list[socket.socket] = []

    def open_on(host: str) -> int:
        socks.append(_listener(host))
        return int(socks[-1].getsockname()[1])

    yield open_on
    for s in socks:
        s.close()


@pytest.fixture
def dashboard(
    sqlite_store: SQLiteStore, db_path: Path, redis_server: RedisServer
) -> Iterator[BrokerRunner]:
    """The dashboard's runner on the test broker: its own scope is all of loopback."""
    cfg = config.load({"SCANSCRIBE_DB": str(db_path), "OLLAMA_HOST": "http://127.0.0.1:9"})
    broker = parse_broker(redis_server.url)
    runner = BrokerRunner(sqlite_store, cfg, broker, SQLiteBoard(db_path))
    yield runner
    runner.shutdown()


def _site() -> str:
    return "s" + uuid.uuid4().hex[:8]


def _queued(server: RedisServer, *sites: str) -> int:
    client = server.client()
    return sum(int(client.llen(queue_for(s))) for s in sites)


# -- settings ----------------------------------------------------------------------------------
def test_broker_url_needs_a_password_and_is_never_shown_with_it() -> None:
    with pytest.raises(ConfigError, match=r"no password.*requirepass"):
        parse_broker("redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match="not a Redis URL"):
        parse_broker("amqp://:pw@127.0.0.1/0")
    with pytest.raises(ConfigError, match="database number"):
        parse_broker("redis://:pw@127.0.0.1:6379/x")
    broker = parse_broker("redis://:s3cret@10.0.0.5:6380/2")
    assert broker.describe() == "redis://10.0.0.5:6380/2"
    assert "s3cret" not in repr(broker)
    assert load_broker({}) is None


def test_celery_app_accepts_json_and_nothing_else(redis_server: RedisServer) -> None:
    conf = make_app(parse_broker(redis_server.url)).conf
    assert conf.task_serializer == conf.result_serializer == conf.event_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content) == ["json"]


def test_without_a_broker_scans_stay_local_and_a_site_is_refused(
    test_config: config.Config, sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCANSCRIBE_BROKER", raising=False)
    svc = Services(config=test_config, store=sqlite_store)
    try:
        assert isinstance(svc.runner, LocalRunner)
        with pytest.raises(TargetRefused, match="no broker is configured"):
            svc.runner.submit("127.0.0.1", "quick", site="lab")
    finally:
        svc.close()


# -- routing -----------------------------------------------------------------------------------
def _beat(site: str, scope: str, root: bool = False, running: int = 0, age: float = 0) -> Heartbeat:
    return Heartbeat(worker=f"{site}@h-1", site=site, host="h", scope=(scope,),
                     nmap_version="7.93", root=root, running=running, concurrency=2,
                     at=time.time() - age)  # fmt: skip


def test_routing_picks_the_site_that_holds_every_target_and_root_only_where_root() -> None:
    beats = [_beat("dc", "10.1.0.0/24"), _beat("lab", "10.2.0.0/24", root=True),
             _beat("old", "10.3.0.0/24", age=60)]  # fmt: skip
    assert choose_site(["10.1.0.5", "10.1.0.6"], False, beats) == "dc"
    assert choose_site(["10.2.0.5"], True, beats) == "lab"
    with pytest.raises(NoWorker, match="needs root"):
        choose_site(["10.1.0.5"], True, beats)
    with pytest.raises(NoWorker, match=r"Target 10\.3\.0\.1 refused"):  # its worker is silent
        choose_site(["10.3.0.1"], False, beats)
    with pytest.raises(NoWorker, match="No one site"):
        choose_site(["10.1.0.5", "10.2.0.5"], False, beats)
    busy = [_beat("a", "10.9.0.0/16", running=2), _beat("b", "10.9.0.0/16")]
    assert choose_site(["10.9.1.1"], False, busy) == "b"


def test_scans_of_two_subnets_land_on_the_workers_of_their_sites(
    fleet: Fleet, dashboard: BrokerRunner, listeners: Callable[[str], int], db_path: Path
) -> None:
    alpha, beta = _site(), _site()
    wa = fleet.start(alpha, ALPHA)
    wb = fleet.start(beta, BETA)
    pa, pb = listeners("127.0.1.7"), listeners("127.0.2.9")
    # No site named: the one whose scope holds the target is chosen.
    ja = dashboard.submit("127.0.1.7", "quick", str(pa))
    assert ja.site == alpha
    # From the command line too, naming the site.
    out = subprocess.run(
        [PYTHON, "-m", "scanner", "scan", "--profile", "quick", "--ports", str(pb),
         "--site", beta, "--format", "json", "--", "127.0.2.9"],
        cwd=ROOT, env=fleet.env("127.0.0.0/8"), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed["status"] == "done"
    assert [p["port"] for p in printed["hosts"][0]["ports"]] == [pb]
    ja = dashboard.wait(ja.id, timeout=60)
    assert ja.status == "done", ja.error
    jb = dashboard.get(printed["id"])
    # Each job was run by its own site's worker process (the nmap parent recorded with it).
    assert (ja.runner_pid, ja.site) == (wa.pid, alpha)
    assert (jb.runner_pid, jb.site) == (wb.pid, beta)
    report = dashboard.store.get_report(ja.report_id or "")
    assert [(h.address, [p.port for p in h.ports]) for h in report.hosts] == [("127.0.1.7", [pa])]


def test_a_target_no_live_worker_holds_is_refused_before_anything_is_queued(
    fleet: Fleet,
    dashboard: BrokerRunner,
    redis_server: RedisServer,
    listeners: Callable[[str], int],
) -> None:
    alpha = _site()
    fleet.start(alpha, ALPHA)
    with pytest.raises(NoWorker, match=r"Target 127\.0\.3\.4 refused: no live worker's scope"):
        dashboard.submit("127.0.1.1 127.0.3.4", "quick")
    with pytest.raises(NoWorker, match=rf"outside the scope of site '{alpha}'"):
        dashboard.submit("127.0.2.1", "quick", site=alpha)
    with pytest.raises(NoWorker, match="none of its workers is live"):
        dashboard.submit("127.0.1.1", "quick", site="nowhere")
    assert dashboard.store.list_jobs() == []
    assert _queued(redis_server, alpha) == 0


def test_a_worker_refuses_a_forged_task_outside_its_own_scope(
    fleet: Fleet,
    dashboard: BrokerRunner,
    redis_server: RedisServer,
    listeners: Callable[[str], int],
) -> None:
    alpha = _site()
    fleet.start(alpha, ALPHA)
    port = listeners("127.0.2.9")
    job = Job(id=new_id("job"), targets=("127.0.2.9",), profile="quick", ports=str(port),
              created_at=time.time(), site=alpha)  # fmt: skip
    dashboard.store.save_job(job)
    # Straight into alpha's queue, past the dashboard's routing.
    dashboard.app.send_task(
        TASK_SCAN,
        kwargs=task_kwargs(job.id, ["127.0.2.9"], "quick", str(port), 1),
        queue=queue_for(alpha),
    )
    done = wait_for(lambda: (j := dashboard.get(job.id)).status == "failed" and j, timeout=60)
    assert isinstance(done, Job)
    assert f"Refused by the worker at site '{alpha}'" in done.error
    assert "127.0.2.9" in done.error and "scope" in done.error
    assert done.pid is None  # nmap never started


def test_a_pickled_task_is_refused_and_runs_nothing(
    fleet: Fleet, dashboard: BrokerRunner, redis_server: RedisServer
) -> None:
    alpha = _site()
    worker = fleet.start(alpha, ALPHA)
    job = Job(id=new_id("job"), targets=("127.0.1.1",), profile="quick",
              created_at=time.time(), site=alpha)  # fmt: skip
    dashboard.store.save_job(job)
    marker = worker.log.parent / f"pickled-{uuid.uuid4().hex}"

    class Bomb:
        """What an attacker would put in a pickled message: loading it runs a command."""

        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    kwargs: dict[str, object] = dict(task_kwargs(job.id, ["127.0.1.1"], "quick", "", 1))
    kwargs["ports"] = Bomb()
    dashboard.app.send_task(TASK_SCAN, kwargs=kwargs, queue=queue_for(alpha), serializer="pickle")
    wait_for(lambda: "Refusing to deserialize untrusted content" in worker.output(), timeout=30)
    assert not marker.exists()
    assert dashboard.get(job.id).status == "queued"  # nothing ran


# -- heartbeats --------------------------------------------------------------------------------
def test_heartbeats_in_the_store_and_on_system_status(
    fleet: Fleet, db_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    alpha = _site()
    worker = fleet.start(alpha, ALPHA)
    beat = wait_for(
        lambda: (b := fleet.beat_of(worker.pid)) and b.nmap_version != "checking" and b, timeout=15
    )
    assert isinstance(beat, Heartbeat)
    assert beat.site == alpha and beat.scope == (ALPHA,)
    assert beat.nmap_version.split(".")[0].isdigit()
    assert beat.root == (os.geteuid() == 0) and beat.running == 0
    first = beat.at
    wait_for(lambda: (b := fleet.beat_of(worker.pid)) is not None and b.at > first, timeout=15)
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("SCANSCRIBE_BROKER", redis_server.url)
    at = AppTest.from_file(str(ROOT / "pages/status.py"), default_timeout=30).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "heartbeat age (s)" in d.value.columns)
    row = table[table["site"] == alpha].iloc[0]
    assert row["scope"] == ALPHA and bool(row["live"])
    assert 0 <= float(row["heartbeat age (s)"]) < 10
    texts = " ".join(w.value for w in at.warning)
    assert "store is SQLite" in texts  # every machine must share the store
    # The Scan page offers the live sites.
    at = AppTest.from_file(str(ROOT / "pages/scan.py"), default_timeout=30).run()
    assert alpha in at.selectbox(key="scan_site").options


# -- cancel ------------------------------------------------------------------------------------
def _running(runner: BrokerRunner, job_id: str) -> Job | None:
    job = runner.get(job_id)
    return job if job.status == "running" and job.pgid and group_alive(job.pgid) else None


def test_cancel_stops_nmap_on_the_worker_within_two_seconds(
    fleet: Fleet, dashboard: BrokerRunner, listeners: Callable[[str], int]
) -> None:
    alpha = _site()
    worker = fleet.start(alpha, ALPHA)
    port = listeners("127.0.1.5")  # silent: version detection waits on it
    job = dashboard.submit("127.0.1.5", "standard", str(port))
    running = wait_for(lambda: _running(dashboard, job.id), timeout=60)
    assert isinstance(running, Job) and running.runner_pid == worker.pid
    started = time.monotonic()
    ended = dashboard.cancel(job.id)
    wait_for(lambda: not group_alive(running.pgid or 0), timeout=5, every=0.02)
    assert time.monotonic() - started <= 2.0
    assert ended.status == "cancelled"
    wait_for(lambda: dashboard.get(job.id).status == "cancelled", timeout=10)
    assert dashboard.store.list_reports() == []


def test_the_command_line_waits_for_the_worker_and_sigint_cancels_there(
    fleet: Fleet, dashboard: BrokerRunner, listeners: Callable[[str], int]
) -> None:
    alpha = _site()
    fleet.start(alpha, ALPHA)
    port = listeners("127.0.1.6")
    cli = subprocess.Popen(
        [PYTHON, "-m", "scanner", "scan", "--profile", "standard", "--ports", str(port),
         "--", "127.0.1.6"],
        cwd=ROOT, env=fleet.env("127.0.0.0/8"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        running = wait_for(
            lambda: next(
                (j for j in dashboard.store.list_jobs() if _running(dashboard, j.id)), None
            ),
            timeout=60,
        )
        assert isinstance(running, Job) and running.site == alpha
        started = time.monotonic()
        cli.send_signal(signal.SIGINT)
        wait_for(lambda: not group_alive(running.pgid or 0), timeout=5, every=0.02)
        assert time.monotonic() - started <= 2.0
        _out, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 1
    assert "scan cancelled" in err
    assert dashboard.get(running.id).status == "cancelled"


# -- failures ----------------------------------------------------------------------------------
def test_a_worker_killed_mid_scan_leaves_no_nmap_and_another_worker_finishes_once(
    fleet: Fleet, dashboard: BrokerRunner, tmp_path: Path
) -> None:
    held = HeldScan(tmp_path / "held", 4321)
    path = f"{held.bin}{os.pathsep}{os.environ['PATH']}"
    alpha = _site()
    first = fleet.start(alpha, ALPHA, concurrency=1, PATH=path)
    second = fleet.start(alpha, ALPHA, concurrency=1, PATH=path)
    job = dashboard.submit("127.0.1.1", "quick")
    running = wait_for(lambda: _running(dashboard, job.id), timeout=60)
    assert isinstance(running, Job)
    victim = first if running.runner_pid == first.pid else second
    other = second if victim is first else first
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    # Its nmap died with it: no orphan on this machine.
    wait_for(lambda: not group_alive(running.pgid or 0), timeout=5)
    # Re-queued once, to the other worker of the site, within a minute.
    again = wait_for(
        lambda: (j := _running(dashboard, job.id)) and j.runner_pid == other.pid and j, timeout=60
    )
    assert isinstance(again, Job) and again.attempt == 2
    held.release()
    done = dashboard.wait(job.id, timeout=60)
    assert (done.status, done.attempt, done.runner_pid) == ("done", 2, other.pid)
    reports = dashboard.store.list_reports()
    assert [r.id for r in reports] == [done.report_id]  # one report, no duplicate
    wait_for(lambda: not nmap_processes(str(held.bin)), timeout=10)


def test_a_job_whose_workers_keep_dying_is_requeued_once_per_attempt_then_fails(
    redis_server: RedisServer, sqlite_store: SQLiteStore
) -> None:
    ledger = Ledger(parse_broker(redis_server.url), lease_s=0.2)
    job = Job(id=new_id("job"), targets=("10.1.0.5",), profile="quick", created_at=time.time(),
              site="dc")  # fmt: skip
    sqlite_store.save_job(replace(job, status="running"))
    ledger.register(job.id, "dc", task_kwargs(job.id, ["10.1.0.5"], "quick", "", 1), "t1", 2)
    sent: list[int] = []
    lock = threading.Lock()

    def send(entry: Entry, attempt: int) -> str:
        with lock:
            sent.append(attempt)
        return f"t{attempt}"

    assert ledger.claim_run(job.id, 1, "dc@a-1")
    assert not ledger.claim_run(job.id, 1, "dc@b-2")  # a repeated message is dropped
    wait_for(lambda: ledger.holder(job.id) is None, timeout=5)
    # Four reapers at once (workers and dashboards): one re-queue.
    reapers = [
        threading.Thread(target=reap, args=(ledger, sqlite_store, send, f"r{i}")) for i in range(4)
    ]
    for t in reapers:
        t.start()
    for t in reapers:
        t.join()
    assert sent == [2]
    requeued = sqlite_store.get_job(job.id)
    assert (requeued.status, requeued.attempt) == ("queued", 2)
    assert "dc@a-1 stopped answering (attempt 2 of 2)" in requeued.task
    # The second attempt's worker dies too: the job ends failed with the reason, no third try.
    assert ledger.claim_run(job.id, 2, "dc@b-2")
    wait_for(lambda: ledger.holder(job.id) is None, timeout=5)
    reap(ledger, sqlite_store, send, "r0")
    failed = sqlite_store.get_job(job.id)
    assert failed.status == "failed" and "tried 2 times" in failed.error
    assert sent == [2]
    assert ledger.active() == []


def test_broker_down_says_so_and_leaves_nothing_then_scans_resume_when_it_returns(
    fleet: Fleet, dashboard: BrokerRunner, redis_server: RedisServer,
    listeners: Callable[[str], int],
) -> None:  # fmt: skip
    alpha = _site()
    fleet.start(alpha, ALPHA)
    port = listeners("127.0.1.8")
    redis_server.stop()
    with pytest.raises(BrokerUnavailable, match=r"does not answer.*Start Redis"):
        dashboard.submit("127.0.1.8", "quick", str(port))
    assert dashboard.store.list_jobs() == []
    redis_server.start()
    job = wait_for(lambda: _try_submit(dashboard, f"127.0.1.8 --ports {port}"), timeout=30)
    assert isinstance(job, Job)
    done = dashboard.wait(job.id, timeout=90)
    assert done.status == "done", done.error


def _try_submit(runner: BrokerRunner, spec: str) -> Job | None:
    target, _, port = spec.partition(" --ports ")
    try:
        return runner.submit(target, "quick", port)
    except BrokerUnavailable:
        return None


# -- sites in network namespaces ---------------------------------------------------------------
@pytest.fixture
def netlab() -> Iterator[NetLab]:
    """A hub namespace and two sites, each a worker namespace with a host of its own."""
    lab = NetLab()
    try:
        yield lab
    finally:
        lab.close()


def test_sites_in_their_own_namespaces_scan_only_their_own_hosts(
    netlab: NetLab, tmp_path: Path, db_path: Path, child_env: dict[str, str]
) -> None:
    a, b = netlab.add_site("dc"), netlab.add_site("lab")
    for site in (a, b):
        netlab.listen(site.host_ns, site.host_addr, 8080 + site.index)
    server = RedisServer(
        tmp_path / "redis", host=a.redis_addr, port=6379, netns=netlab.hub,
        bind=(a.redis_addr, b.redis_addr),
    ).start()  # fmt: skip
    fleet = Fleet(tmp_path, db_path, server.url, dict(child_env, PYTHONUNBUFFERED="1"))
    try:
        wa = fleet.start(
            "dc", a.scope, netns=a.worker_ns, SCANSCRIBE_BROKER=server.url_at(a.redis_addr)
        )
        wb = fleet.start(
            "lab", b.scope, netns=b.worker_ns, SCANSCRIBE_BROKER=server.url_at(b.redis_addr)
        )
        jobs = {}
        for site in (a, b):
            # The dashboard's command line runs in the hub, whose scope is every site's.
            out = subprocess.run(
                ["ip", "netns", "exec", netlab.hub, PYTHON, "-m", "scanner", "scan",
                 "--profile", "quick", "--ports", f"{8080 + site.index},22", "--format", "json",
                 "--", site.host_addr],
                cwd=ROOT, env=fleet.env("10.215.0.0/16"), capture_output=True, text=True,
                timeout=120,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            jobs[site.name] = json.loads(out.stdout)
        store = SQLiteStore(db_path)
        try:
            for site, worker in ((a, wa), (b, wb)):
                printed = jobs[site.name]
                job = store.get_job(printed["id"])
                assert (job.site, job.runner_pid) == (site.name, worker.pid)
                report = store.get_report(printed["report_id"])
                assert [
                    (h.address, [(p.port, p.state) for p in h.ports]) for h in report.hosts
                ] == [(site.host_addr, [(22, "closed"), (8080 + site.index, "open")])]
        finally:
            store.close()
        # A site's host lies outside the other site's scope: the routing refuses, nothing queued.
        out = subprocess.run(
            ["ip", "netns", "exec", netlab.hub, PYTHON, "-m", "scanner", "scan", "--profile",
             "quick", "--site", "dc", "--", b.host_addr],
            cwd=ROOT, env=fleet.env("10.215.0.0/16"), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 2
        assert f"Target {b.host_addr} refused: it is outside the scope of site 'dc'" in out.stderr
    finally:
        fleet.stop_all()
        server.stop()


def test_firestore_is_the_store_the_dashboard_and_workers_share(
    redis_server: RedisServer, firestore_emulator: Emulator, firestore_project: str,
    tmp_path: Path, child_env: dict[str, str], listeners: Callable[[str], int],
) -> None:  # fmt: skip
    env = firestore_env(firestore_emulator.host, tmp_path / "dash-outbox.db", firestore_project)
    cfg = config.load(env)
    store = open_firestore(cfg)
    board = FirestoreBoard.from_config(cfg)
    runner = BrokerRunner(store, cfg, parse_broker(redis_server.url), board)
    fleet = Fleet(tmp_path, tmp_path / "unused.db", redis_server.url, dict(child_env), board)
    try:
        assert runner.warnings() == []  # a shared store: nothing to warn about
        worker_env = dict(
            firestore_env(firestore_emulator.host, tmp_path / "w.db", firestore_project)
        )
        fleet.start("fs", ALPHA, **worker_env)
        beat = wait_for(lambda: next((b for b in runner.heartbeats() if b.site == "fs"), None))
        assert isinstance(beat, Heartbeat) and beat.scope == (ALPHA,)
        port = listeners("127.0.1.3")
        job = runner.submit("127.0.1.3", "quick", str(port))
        done = runner.wait(job.id, timeout=60)
        assert done.status == "done", done.error
        reports = firestore_emulator.documents(firestore_project, "scans")
        assert list(reports) == [done.report_id]
    finally:
        fleet.stop_all()
        runner.shutdown()
        board.close()
        store.close()


def test_the_workers_package_never_imports_streamlit() -> None:
    code = (
        "import sys, workers.worker, workers.dispatch, workers.cli\n"
        "sys.exit('streamlit' in sys.modules)"
    )
    assert subprocess.run([PYTHON, "-c", code], cwd=ROOT, timeout=60).returncode == 0


def test_a_queued_message_is_json_with_ids_and_validated_values_never_an_argv(
    dashboard: BrokerRunner, redis_server: RedisServer, db_path: Path
) -> None:
    site = _site()
    # A live heartbeat, with no worker behind it: the message stays in the queue to be read.
    SQLiteBoard(db_path).beat(_beat(site, "127.0.0.0/8"))
    job = dashboard.submit("localhost", "standard", "22,80-81")
    [raw] = redis_server.client().lrange(queue_for(site), 0, -1)
    message = json.loads(raw)
    assert message["content-type"] == "application/json"
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == []
    assert kwargs == {
        "job_id": job.id,
        "addresses": ["127.0.0.1"],  # the name was resolved and checked before queueing
        "profile": "standard",
        "ports": "22,80-81",
        "attempt": 1,
    }
    assert "nmap" not in raw.decode() and "--" not in json.dumps(kwargs)
    # A worker refuses any other shape before it looks at the job.
    assert refusal(dict(kwargs, argv=["nmap", "-iL", "/etc/passwd"]), 16) is not None
    assert refusal(dict(kwargs, profile="custom"), 16) is not None
    assert refusal(dict(kwargs, addresses=["-iL /etc/passwd"]), 16) is not None
    assert refusal(dict(kwargs, ports="22 --script=x"), 16) is not None
    assert refusal(kwargs, 16) is None


def test_a_scheduled_scan_runs_on_the_worker_of_its_site(
    fleet: Fleet, redis_server: RedisServer, test_config: config.Config,
    listeners: Callable[[str], int], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    alpha = _site()
    worker = fleet.start(alpha, ALPHA)
    port = listeners("127.0.1.4")
    monkeypatch.setenv("SCANSCRIBE_BROKER", redis_server.url)
    svc = build(test_config)
    mstore = SQLiteMonitorStore(test_config.db_path)
    settings = MonitorSettings(min_interval_s=1.0)
    spec = ScheduleSpec(name="nightly", targets="127.0.1.4", profile="quick", ports=str(port),
                        every="5m")  # fmt: skip
    now = time.time()
    create_schedule(mstore, spec, test_config, settings, gate=svc.gate,
                    who=Identity.local("ana"), clock=lambda: now)  # fmt: skip
    scheduler = Scheduler(svc, mstore, settings, channels={}, clock=lambda: now + 1)
    try:
        assert isinstance(svc.runner, BrokerRunner)
        [run] = scheduler.tick()
        assert scheduler.wait_idle(60)
    finally:
        scheduler.stop()
        svc.close()
        mstore.close()
    runs, jobs = SQLiteMonitorStore(test_config.db_path), SQLiteStore(test_config.db_path)
    try:
        job = jobs.get_job(runs.get_run(run.id).job_id or "")
    finally:
        runs.close()
        jobs.close()
    assert (job.status, job.site, job.runner_pid) == ("done", alpha, worker.pid)
