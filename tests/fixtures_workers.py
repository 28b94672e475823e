"""Fixtures for the worker tests: a real redis-server with a password, real worker processes.

Redis listens on a free loopback port (or, for the namespace tests, on a veth address inside a
namespace this suite creates); every worker is ``python -m scanner worker`` in a process of its
own, stopped (or killed) by the test or at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.fixtures_firestore import free_port
from tests.fixtures_scanner import PYTHON, ROOT, wait_for
from workers.board import Board, Heartbeat, SQLiteBoard


@dataclass
class RedisServer:
    """One redis-server process with ``requirepass``, bound to one address."""

    folder: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    netns: str = ""
    bind: tuple[str, ...] = ()  # addresses to listen on (default: host)
    proc: subprocess.Popen[bytes] | None = None

    def url_at(self, host: str) -> str:
        """The SCANSCRIBE_BROKER value for a client that reaches the server at ``host``."""
        return f"redis://:{self.password}@{host}:{self.port}/0"

    @property
    def url(self) -> str:
        """The SCANSCRIBE_BROKER value for this server."""
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it (again, on the same port) and wait until it answers the password."""
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [
            "redis-server", "--bind", *(self.bind or (self.host,)), "--port", str(self.port),
            "--requirepass", self.password, "--save", "", "--appendonly", "no",
            "--dir", str(self.folder), "--protected-mode", "yes",
        ]  # fmt: skip
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_for(self.answers, timeout=15)
        return self

    def client(self) -> redis.Redis:
        """A client that authenticates (from this process: loopback servers only)."""
        return redis.Redis(host=self.host, port=self.port, password=self.password, socket_timeout=2)

    def answers(self) -> bool:
        """Whether the server accepts the password and answers PING."""
        if self.netns:
            out = subprocess.run(
                ["ip", "netns", "exec", self.netns, "redis-cli", "-h", self.host, "-p",
                 str(self.port), "--no-auth-warning", "-a", self.password, "ping"],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            return out.stdout.strip() == "PONG"
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Stop the server (its data is not kept)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A password-protected redis-server on a free loopback port, for one test."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: `make test` installs it with apt-get")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@dataclass
class Worker:
    """One ``python -m scanner worker`` process."""

    site: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def output(self) -> str:
        """What the worker logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Fleet:
    """Starts workers on a broker and a shared SQLite file; stops every one at the end."""

    def __init__(
        self,
        tmp: Path,
        db_path: Path,
        broker: str,
        base_env: dict[str, str],
        board: Board | None = None,
    ) -> None:
        self.board = board  # where the workers' heartbeats are (default: the SQLite file)
        self.tmp = tmp
        self.db_path = db_path
        self.broker = broker
        self.base_env = base_env
        self.workers: list[Worker] = []

    def env(self, scope: str, **extra: str) -> dict[str, str]:
        """The environment of a worker (or a command line) on this broker and store."""
        env = dict(self.base_env)
        env.update({"SCANSCRIBE_BROKER": self.broker, "SCANSCRIBE_SCOPE": scope})
        env.update(extra)
        return env

    def start(
        self, site: str, scope: str, concurrency: int = 2, netns: str = "", **extra: str
    ) -> Worker:
        """Start a worker and wait until its heartbeat is in the store."""
        log = self.tmp / f"worker-{site}-{len(self.workers)}.log"
        argv = [
            PYTHON,
            "-m",
            "scanner",
            "worker",
            "--site",
            site,
            "--concurrency",
            str(concurrency),
        ]
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=self.env(scope, **extra), stdout=out, stderr=out,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        worker = Worker(site=site, proc=proc, log=log)
        self.workers.append(worker)
        # `ip netns exec` execs the worker: its pid is the one Popen gave.
        wait_for(lambda: self.beat_of(proc.pid) is not None or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, worker.output()[-3000:]
        return worker

    def beats(self) -> list[Heartbeat]:
        """Every heartbeat in the shared store."""
        if self.board is not None:
            return self.board.heartbeats()
        board = SQLiteBoard(self.db_path)
        try:
            return board.heartbeats()
        finally:
            board.close()

    def beat_of(self, pid: int) -> Heartbeat | None:
        """The heartbeat of the worker with this process id, if it sent one."""
        return next((b for b in self.beats() if b.worker.endswith(f"-{pid}")), None)

    def stop_all(self) -> None:
        """SIGTERM every worker still running, SIGKILL what lingers."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for w in self.workers:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(timeout=10)


@pytest.fixture
def fleet(
    tmp_path: Path, db_path: Path, redis_server: RedisServer, child_env: dict[str, str]
) -> Iterator[Fleet]:
    """Workers on the test's redis-server and SQLite file; all stopped afterwards."""
    env = dict(child_env)
    env["PYTHONUNBUFFERED"] = "1"
    f = Fleet(tmp_path, db_path, redis_server.url, env)
    yield f
    f.stop_all()


def nmap_processes(marker: str) -> list[int]:
    """Pids of live processes whose command line contains ``marker`` (an nmap path, say)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and state not in ("Z", "X") and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def port_free_listener(host: str) -> Callable[[], socket.socket]:
    """A factory of listening sockets on ``host`` (nmap sees them open)."""

    def make() -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        s.listen(16)
        return s

    return make
