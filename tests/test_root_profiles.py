"""The root-only profiles run for real: deep, udp and full-tcp's SYN path against a host in a
test network namespace with real listeners, through the command line and through the job runner.

The target namespace runs an SSH-speaking TCP service on 22, a real HTTP server on 80 and a UDP
service on 53 that answers every DNS query; every other port has nothing behind it. Each scan's
report must be stored and its open ports must be exactly the ones those listeners expose.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.models import Report
from store.sqlite import SQLiteStore
from tests.fixtures_scanner import PYTHON, ROOT

pytestmark = pytest.mark.nmap

SCANNER, TARGET = "10.213.0.1", "10.213.0.2"
TCP_OPEN = {22, 80}
UDP_OPEN = {53}
# A TCP port and a UDP port with nothing behind them.
TCP_CLOSED, UDP_CLOSED = 81, 54

# The target's services, run inside the target namespace; prints "ready" once all listen.
SERVICES = r"""
import http.server, socket, sys, threading

addr = sys.argv[1]

def ssh_client(conn):
    with conn:
        conn.settimeout(2)
        try:
            conn.sendall(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n")
            conn.recv(256)
        except OSError:
            pass

def ssh(sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=ssh_client, args=(conn,), daemon=True).start()

def dns(sock):
    # Answer every query: same id and question, QR set, rcode NXDOMAIN, no records.
    while True:
        data, peer = sock.recvfrom(4096)
        if len(data) >= 12:
            flags = bytes([data[2] | 0x80, (data[3] & 0xF0) | 0x03])
            sock.sendto(data[:2] + flags + data[4:6] + bytes(6) + data[12:], peer)

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

tcp = socket.socket()
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((addr, 22))
tcp.listen(16)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((addr, 53))
web = http.server.ThreadingHTTPServer((addr, 80), Quiet)
web.daemon_threads = True
for target, arg in ((ssh, tcp), (dns, udp)):
    threading.Thread(target=target, args=(arg,), daemon=True).start()
threading.Thread(target=web.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""

# Submit one job to the job runner inside the scanner namespace and wait for it.
RUN_JOB = r"""
import json, sys
import config
from scanner.runner import LocalRunner
from store.sqlite import SQLiteStore

cfg = config.load()
store = SQLiteStore(cfg.db_path)
runner = LocalRunner(store, cfg)
job = runner.submit(sys.argv[1], sys.argv[2], sys.argv[3])
job = runner.wait(job.id, timeout=300)
runner.shutdown()
print(json.dumps({"status": job.status, "error": job.error, "report_id": job.report_id}))
"""


@pytest.fixture
def lab(
    lab_namespaces: tuple[str, str], child_env: dict[str, str], db_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """The target's listeners running; yields the scanner namespace and the child environment."""
    scanner_ns, target_ns = lab_namespaces
    proc = subprocess.Popen(
        ["ip", "netns", "exec", target_ns, PYTHON, "-c", SERVICES, TARGET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        env = dict(child_env, SCANSCRIBE_SCOPE="10.213.0.0/30")
        yield scanner_ns, env
    finally:
        proc.kill()
        proc.communicate()


def _in_ns(ns: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, PYTHON, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _scan(how: str, ns: str, profile: str, ports: str, env: dict[str, str]) -> Report:
    """Run ``profile`` through the command line or the job runner; the stored report."""
    if how == "cli":
        argv = ["-m", "scanner", "scan", "--profile", profile, "--format", "json"]
        if ports:
            argv += ["--ports", ports]
        out = _in_ns(ns, [*argv, "--", TARGET], env)
        assert out.returncode == 0, out.stderr
        result: dict[str, Any] = json.loads(out.stdout)
    else:
        out = _in_ns(ns, ["-c", RUN_JOB, TARGET, profile, ports], env)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
    assert result["status"] == "done", result
    store = SQLiteStore(Path(env["SCANSCRIBE_DB"]))
    try:
        report = store.get_report(result["report_id"])
        assert [j.report_id for j in store.list_jobs() if j.report_id] == [report.id]
    finally:
        store.close()
    assert report.profile == profile and report.complete
    return report


def _open(report: Report, protocol: str) -> set[int]:
    (host,) = [h for h in report.hosts if h.status == "up"]
    assert host.address == TARGET
    return {p.port for p in host.open_ports if p.protocol == protocol}


@pytest.fixture(autouse=True)
def _root_only() -> None:
    assert os.geteuid() == 0, "these profiles need raw sockets: run the tests as root, as CI does"


@pytest.mark.parametrize("how", ["cli", "runner"])
def test_deep_reads_versions_and_guesses_the_os(how: str, lab: tuple[str, dict[str, str]]) -> None:
    ns, env = lab
    report = _scan(how, ns, "deep", f"22,80,{TCP_CLOSED}", env)
    assert "-sS" in report.args and "-O" in report.args and "-sV" in report.args
    assert _open(report, "tcp") == TCP_OPEN
    (host,) = [h for h in report.hosts if h.status == "up"]
    ports = {p.port: p for p in host.ports}
    assert ports[TCP_CLOSED].state == "closed"
    assert (ports[22].service, ports[22].product, ports[22].version) == (
        "ssh",
        "OpenSSH",
        "8.9p1 Ubuntu 3ubuntu0.6",
    )
    assert ports[80].service == "http" and ports[80].product == "SimpleHTTPServer"
    assert ports[80].version == "0.6"
    assert host.os, "OS detection produced no guess"
    assert "Linux" in host.os_guess and max(m.accuracy for m in host.os) >= 85


@pytest.mark.parametrize("how", ["cli", "runner"])
def test_udp_tells_an_answering_service_from_an_empty_port(
    how: str, lab: tuple[str, dict[str, str]]
) -> None:
    ns, env = lab
    report = _scan(how, ns, "udp", f"53,{UDP_CLOSED}", env)
    assert "-sU" in report.args
    assert _open(report, "udp") == UDP_OPEN
    (host,) = [h for h in report.hosts if h.status == "up"]
    states = {p.port: p.state for p in host.ports}
    assert states[53] == "open"
    assert states[UDP_CLOSED] in ("closed", "open|filtered")


@pytest.mark.parametrize("how", ["cli", "runner"])
def test_full_tcp_as_root_sends_syn_probes_over_every_port(
    how: str, lab: tuple[str, dict[str, str]]
) -> None:
    ns, env = lab
    report = _scan(how, ns, "full-tcp", "", env)
    assert "-sS" in report.args and "-sT" not in report.args and "-p-" in report.args
    assert report.extra["scaninfo"] == [{"protocol": "tcp", "services": "1-65535"}]
    assert _open(report, "tcp") == TCP_OPEN
