"""``python -m scanner profiles|jobs|scan`` as a cron job or a CI pipeline would run it."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import config
from scanner.cli import build_parser, report_table, scan_json
from scanner.models import Host, Port, Report, Script
from scanner.runner import LocalRunner
from store.records import Job
from store.sqlite import SQLiteStore
from tests.fixtures_scanner import PYTHON, ROOT, group_alive, wait_for

pytestmark = pytest.mark.nmap


def cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "scanner", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_profiles_lists_every_profile_with_its_arguments(child_env: dict[str, str]) -> None:
    table = cli(child_env, "profiles")
    assert table.returncode == 0
    for pid in ("quick", "standard", "full-tcp", "deep", "safe-scripts", "udp"):
        assert pid in table.stdout
    assert '--script "(default and safe) and not external' in table.stdout
    data = json.loads(cli(child_env, "profiles", "--format", "json").stdout)
    quick = next(p for p in data if p["id"] == "quick")
    assert quick["arguments"][:4] == ["-sT", "-T4", "--top-ports", "100"]
    assert "--host-timeout" in quick["arguments"]


def test_scan_prints_one_json_object_and_saves_the_report(
    child_env: dict[str, str], listen: Callable[..., int], closed_port: int, db_path: Path
) -> None:
    port = listen()
    out = cli(
        child_env,
        "scan",
        "--profile",
        "quick",
        "--ports",
        f"{port},{closed_port}",
        "--format",
        "json",
        "--",
        "127.0.0.1",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # stdout holds that one object and nothing else
    assert data["status"] == "done"
    assert data["targets"] == ["127.0.0.1"]
    assert data["profile"] == "quick"
    assert data["nmap_version"] == "7.93" or data["nmap_version"]
    assert data["started_at"].endswith("Z") and data["finished_at"].endswith("Z")
    (host,) = data["hosts"]
    assert host["address"] == "127.0.0.1"
    assert host["timed_out"] is False
    by_port = {p["port"]: p for p in host["ports"]}
    assert isinstance(next(iter(by_port)), int)
    assert by_port[port]["state"] == "open"
    assert isinstance(by_port[port]["service"], str)
    assert set(by_port[port]) == {
        "port",
        "protocol",
        "state",
        "reason",
        "service",
        "product",
        "version",
        "extrainfo",
        "cpe",
        "scripts",
        "cves",
    }
    assert by_port[port]["cves"] == []  # a plain listener: no script reported a CVE
    store = SQLiteStore(db_path)
    try:
        assert store.get_job(data["id"]).status == "done"
        assert store.get_report(data["report_id"]).host("127.0.0.1") is not None
    finally:
        store.close()

    jobs = cli(child_env, "jobs")
    assert jobs.returncode == 0
    assert data["id"] in jobs.stdout and "done" in jobs.stdout
    listed = json.loads(cli(child_env, "jobs", "--format", "json").stdout)
    assert listed[0]["id"] == data["id"] and listed[0]["status"] == "done"


def test_scan_table_output(child_env: dict[str, str], listen: Callable[..., int]) -> None:
    port = listen()
    out = cli(child_env, "scan", "127.0.0.1", "--profile", "quick", "--ports", str(port))
    assert out.returncode == 0, out.stderr
    assert f"{port}/tcp" in out.stdout and "open" in out.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--profile", "quick", "--", "127.0.0.1;id"],
        ["scan", "--profile", "quick", "--", "10.9.9.9"],
        ["scan", "--profile", "quick", "--ports", "70000", "--", "127.0.0.1"],
        ["scan", "--profile", "nope", "--", "127.0.0.1"],
    ],
)
def test_refused_input_exits_2_with_the_reason_and_no_job(
    child_env: dict[str, str], db_path: Path, args: list[str]
) -> None:
    out = cli(child_env, *args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert "refused" in out.stderr or "invalid choice" in out.stderr
    store = SQLiteStore(db_path)
    try:
        assert store.list_jobs() == []
    finally:
        store.close()


def test_missing_nmap_exits_1_with_the_install_command(child_env: dict[str, str]) -> None:
    out = cli(dict(child_env, PATH="/nonexistent"), "scan", "--profile", "quick", "--", "127.0.0.1")
    assert out.returncode == 1
    assert "nmap is not installed" in out.stderr and "apt-get install" in out.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_cancels_the_job_and_kills_nmap(
    child_env: dict[str, str], silent_port: int, db_path: Path, signum: int
) -> None:
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "scanner",
            "scan",
            "--profile",
            "standard",
            "--ports",
            str(silent_port),
            "--format",
            "json",
            "--",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = SQLiteStore(db_path)
    try:

        def running() -> Job | None:
            jobs = store.list_jobs(statuses=("running",)) if db_path.exists() else []
            return jobs[0] if jobs and jobs[0].pgid else None

        job = wait_for(running, timeout=30)
        assert isinstance(job, Job) and job.pgid
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert json.loads(stdout)["status"] == "cancelled"
        assert "cancelled" in stderr
        assert store.get_job(job.id).status == "cancelled"
        assert not group_alive(job.pgid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        store.close()


def test_every_subcommand_is_on_one_command_line() -> None:
    text = build_parser().format_help()
    for name in ("profiles", "jobs", "scan", "list", "show", "diff", "import"):
        assert name in text


def test_timed_out_hosts_never_read_as_clean() -> None:
    report = Report(
        id="r1",
        hosts=(
            Host("127.0.0.5", timed_out=True),
            Host(
                "127.0.0.6",
                ports=(
                    Port(
                        80, "tcp", "open", service="http", scripts=(Script("http-title", "Hello"),)
                    ),
                ),
            ),
            Host("127.0.0.7"),
        ),
    )
    job = Job("job-1", ("127.0.0.5-7",), "quick", status="done", report_id="r1")
    text = report_table(job, report)
    assert "127.0.0.5: host timed out" in text
    assert text.count("no open ports found") == 1  # only the host that really has none
    assert "http-title" in text and "Hello" in text
    data = scan_json(job, report)
    assert [h["timed_out"] for h in data["hosts"]] == [True, False, False]
    assert data["hosts"][1]["ports"][0]["scripts"] == {"http-title": "Hello"}


def test_a_command_line_scan_can_be_cancelled_from_the_dashboard(
    child_env: dict[str, str], silent_port: int, db_path: Path, scan_config: config.Config
) -> None:
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "scanner",
            "scan",
            "--profile",
            "standard",
            "--ports",
            str(silent_port),
            "--format",
            "json",
            "--",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = SQLiteStore(db_path)
    dashboard = LocalRunner(store, scan_config)
    try:

        def running() -> Job | None:
            jobs = store.list_jobs(statuses=("running",)) if db_path.exists() else []
            return jobs[0] if jobs and jobs[0].pgid else None

        job = wait_for(running, timeout=30)
        assert isinstance(job, Job) and job.pgid
        assert dashboard.recover() == []  # the command line is alive: its job is left alone
        assert dashboard.cancel(job.id).status == "cancelled"
        assert not group_alive(job.pgid)
        stdout, _stderr = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert json.loads(stdout)["status"] == "cancelled"
        assert store.get_job(job.id).status == "cancelled"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        dashboard.shutdown()
        store.close()


LISTENER = (
    "import socket, sys\n"
    "s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(16)\n"
    "print(s.getsockname()[1], flush=True); sys.stdin.read()\n"
)


def test_a_range_of_hosts_in_test_namespaces(
    lab_namespaces: tuple[str, str], child_env: dict[str, str]
) -> None:
    scanner_ns, target_ns = lab_namespaces
    listeners = [
        subprocess.Popen(
            ["ip", "netns", "exec", ns, PYTHON, "-c", LISTENER, address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for ns, address in ((scanner_ns, "10.213.0.1"), (target_ns, "10.213.0.2"))
    ]
    try:
        ports = [int(p.stdout.readline()) for p in listeners if p.stdout]
        env = dict(child_env, SCANSCRIBE_SCOPE="10.213.0.0/30")
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                scanner_ns,
                PYTHON,
                "-m",
                "scanner",
                "scan",
                "--profile",
                "quick",
                "--ports",
                ",".join(map(str, ports)),
                "--format",
                "json",
                "--",
                "10.213.0.0/30",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        hosts = {h["address"]: h for h in json.loads(out.stdout)["hosts"] if h["status"] == "up"}
        assert set(hosts) == {"10.213.0.1", "10.213.0.2"}
        for address, own in zip(("10.213.0.1", "10.213.0.2"), ports, strict=True):
            states = {p["port"]: p["state"] for p in hosts[address]["ports"]}
            assert states[own] == "open"
            assert [p for p, s in states.items() if s == "open"] == [own]
    finally:
        for p in listeners:
            p.kill()
            p.communicate()
