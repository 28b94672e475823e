"""Fixtures for the scanner tests: loopback listeners, a scan runner, process checks."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import config
from scanner.runner import LocalRunner
from store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def wait_for(check: Callable[[], object], timeout: float = 30.0, every: float = 0.05) -> object:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def group_alive(pgid: int) -> bool:
    """Whether any process (other than a zombie) is left in process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def nmap_environ(pid: int) -> dict[str, str]:
    """The environment a running process was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode("utf-8", "replace") for k, v in pairs}


def _listen(host: str = "127.0.0.1", backlog: int = 64) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(backlog)
    return sock


@pytest.fixture
def listen() -> Iterator[Callable[..., int]]:
    """Open TCP listeners on loopback (never accepting: nmap sees them open); returns the port."""
    socks: list[socket.socket] = []

    def open_one(host: str = "127.0.0.1") -> int:
        sock = _listen(host)
        socks.append(sock)
        return int(sock.getsockname()[1])

    yield open_one
    for sock in socks:
        sock.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # nmap's probes reset connections on purpose


@pytest.fixture
def http_port(tmp_path: Path) -> Iterator[int]:
    """A real HTTP server on a loopback port, in a thread."""
    (tmp_path / "index.html").write_text("<title>ScanScribe test page</title>")
    server = _QuietServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port(listen: Callable[..., int]) -> int:
    """A port that accepts connections and never says a word: service detection waits on it."""
    return listen()


@pytest.fixture
def scan_config(test_config: config.Config) -> config.Config:
    """Test configuration for scans: loopback scope, two job slots."""
    return replace(test_config, max_jobs=2)


@pytest.fixture
def runner(sqlite_store: SQLiteStore, scan_config: config.Config) -> Iterator[LocalRunner]:
    """A local job runner on the test store; every nmap it started is killed afterwards."""
    r = LocalRunner(sqlite_store, scan_config)
    yield r
    r.shutdown()


@pytest.fixture
def child_env(db_path: Path) -> dict[str, str]:
    """Environment for child processes (command line, helper scripts) using the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANSCRIBE_")}
    env.update({"SCANSCRIBE_DB": str(db_path), "PYTHONPATH": str(ROOT)})
    env["OLLAMA_HOST"] = "http://127.0.0.1:9"
    return env


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def lab_namespaces() -> Iterator[tuple[str, str]]:
    """Two network namespaces joined by a veth pair: a scanner at 10.213.0.1, a host at .2.

    Everything scanned in them stays inside namespaces this fixture creates and removes.
    """
    tag = f"{os.getpid() % 100000}"
    scanner_ns, target_ns = f"ss-scan-{tag}", f"ss-host-{tag}"
    _ip("netns", "add", scanner_ns)
    try:
        _ip("netns", "add", target_ns)
        _ip(
            "link",
            "add",
            f"ssa{tag}",
            "netns",
            scanner_ns,
            "type",
            "veth",
            "peer",
            "name",
            f"ssb{tag}",
            "netns",
            target_ns,
        )
        for ns, dev, addr in (
            (scanner_ns, f"ssa{tag}", "10.213.0.1/30"),
            (target_ns, f"ssb{tag}", "10.213.0.2/30"),
        ):
            _ip("-n", ns, "addr", "add", addr, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield scanner_ns, target_ns
    finally:
        for ns in (scanner_ns, target_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
