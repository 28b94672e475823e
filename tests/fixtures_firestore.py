"""Fixtures for the Firestore tests: the emulator (npm @firestore-emulator/server) on loopback."""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import config
from store.firestore import FirestoreStore
from store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "tests" / "firestore_emulator.js"
PACKAGE = ROOT / "node_modules" / "@firestore-emulator" / "server"
START_DEADLINE_S = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def emulator_missing() -> str | None:
    """Why the emulator cannot start here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (make test installs it with npm)"
    if not PACKAGE.is_dir():
        return "node_modules/@firestore-emulator/server is missing: run `npm ci` (make test does)"
    return None


class Emulator:
    """One Firestore emulator process on 127.0.0.1, driven through the launcher's stdin."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()

    def start(self) -> Emulator:
        """Start the process and wait, with a deadline, until it accepts connections."""
        self._proc = subprocess.Popen(
            ["node", str(LAUNCHER), "--host", "127.0.0.1", "--port", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self._expect("ready", START_DEADLINE_S)
        self.wait_port(open_=True)
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put("")  # end of output: the process is gone

    def _expect(self, prefix: str, deadline_s: float = 10.0) -> str:
        try:
            line = self._lines.get(timeout=deadline_s)
        except queue.Empty:
            raise RuntimeError(f"the Firestore emulator did not say {prefix!r} in time") from None
        if not line.startswith(prefix):
            raise RuntimeError(f"the Firestore emulator said {line[:200]!r}, not {prefix!r}")
        return line

    def _send(self, command: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()

    def wait_port(self, *, open_: bool, deadline_s: float = 10.0) -> None:
        """Wait until the port accepts (or refuses) connections, with a deadline."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    accepting = True
            except OSError:
                accepting = False
            if accepting == open_:
                return
            time.sleep(0.02)  # polling interval while waiting for the condition
        state = "open" if open_ else "closed"
        raise RuntimeError(f"port {self.port} did not become {state} within {deadline_s} s")

    def offline(self) -> None:
        """Close the port and every connection, keeping the data, as if the network dropped."""
        self._send("offline")
        self._expect("offline")
        self.wait_port(open_=False)

    def online(self) -> None:
        """Listen again on the same port with the same data."""
        self._send("online")
        self._expect("ready")
        self.wait_port(open_=True)

    def dump(self) -> dict[str, Any]:
        """The emulator's whole database, straight from the emulator."""
        self._send("dump")
        return dict(json.loads(self._expect("{", 30.0)))

    def documents(self, project: str, collection: str) -> dict[str, dict[str, Any]]:
        """The documents of one top-level collection, by id, as the emulator holds them."""
        db = self.dump()["projects"].get(project, {}).get("databases", {}).get("(default)", {})
        coll = db.get("collections", {}).get(collection, {})
        return {k: v for k, v in coll.get("documents", {}).items() if v.get("fields")}

    def stop(self) -> None:
        """End the process (closing stdin ends it; kill it if it lingers)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)


def firestore_env(host: str, db_path: Path, project: str, timeout: str = "5") -> dict[str, str]:
    """Settings that select Firestore at ``host`` (an emulator), outbox in ``db_path``."""
    return {
        "SCANSCRIBE_STORE": "firestore",
        "SCANSCRIBE_DB": str(db_path),
        "FIRESTORE_EMULATOR_HOST": host,
        "SCANSCRIBE_FIREBASE_PROJECT": project,
        "SCANSCRIBE_FIRESTORE_TIMEOUT": timeout,
        "OLLAMA_HOST": "http://127.0.0.1:9",
    }


def open_firestore(cfg: config.Config) -> FirestoreStore:
    """A Firestore store built the way the app builds it, with its SQLite outbox."""
    return FirestoreStore.from_config(cfg, outbox=SQLiteStore(cfg.db_path))


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[Emulator]:
    """One emulator for the whole session; each test uses its own project id in it."""
    missing = emulator_missing()
    if missing:
        pytest.skip(missing)
    emulator = Emulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def own_emulator() -> Iterator[Emulator]:
    """An emulator for one test, which that test may take offline or stop."""
    missing = emulator_missing()
    if missing:
        pytest.skip(missing)
    emulator = Emulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def firestore_project() -> str:
    """A project id of its own for one test, so tests sharing the emulator never meet."""
    return f"demo-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def firestore_config(
    firestore_emulator: Emulator, tmp_path: Path, firestore_project: str
) -> config.Config:
    """Configuration selecting Firestore on the session emulator, outbox in a fresh file."""
    return config.load(
        firestore_env(firestore_emulator.host, tmp_path / "outbox.db", firestore_project)
    )


@pytest.fixture
def firestore_store(firestore_config: config.Config) -> Iterator[FirestoreStore]:
    """A Firestore store on the session emulator."""
    store = open_firestore(firestore_config)
    yield store
    store.close()
