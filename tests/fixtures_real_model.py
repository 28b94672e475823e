"""Fixtures for the tests against a real model: Gemma 3 270M in llama.cpp behind Ollama's API.

The adapter (tests/real_model_server.py, not Ollama) runs once per test session as a child
process started by ``scripts/real-model 0``, which installs what is missing and picks a free
loopback port. Tests reach it only through ScanScribe's own code paths.
"""

from __future__ import annotations

import re
import selectors
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import config

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "real-model"
CORPUS = ROOT.parent / "shared" / "corpus" / "real-nmap" / "real"
MODEL = "gemma3:270m"
ALT = "gemma3:270m-alt"
FINDINGS = "gemma3:270m-findings"  # its template opens the answer with "Findings, host by host"
# Tokens per answer when a request names no num_predict: enough to stream in many pieces and to
# be stopped part-way, few enough to keep the suite quick.
NUM_PREDICT = 48
START_DEADLINE_S = 240.0


@dataclass(frozen=True)
class RealModel:
    """The running adapter: where it listens and the model names it serves."""

    url: str
    model: str = MODEL
    alt: str = ALT
    findings: str = FINDINGS
    num_predict: int = NUM_PREDICT


def _first_line(proc: subprocess.Popen[str], deadline_s: float) -> str:
    """The adapter's first stdout line (``listening on URL ...``), waited for with a deadline."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if sel.select(timeout=0.5):
            return proc.stdout.readline()
        if proc.poll() is not None:
            break
    return ""


@contextmanager
def serve(log: Path, num_predict: int = NUM_PREDICT) -> Iterator[RealModel]:
    """Start the adapter with ``scripts/real-model 0`` (answers of ``num_predict`` tokens unless a
    request says otherwise); yield where it listens; stop it."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(SCRIPT), "0", "--num-predict", str(num_predict)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        line = _first_line(proc, START_DEADLINE_S)
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if found is None:
            raise AssertionError(
                f"scripts/real-model did not start within {START_DEADLINE_S:.0f} s "
                f"(exit {proc.poll()}); its stderr:\n{log.read_text()[-3000:]}\n"
                "Run `make model-deps` once first: it builds llama-cpp-python (several minutes)."
            )
        yield RealModel(found.group(1), num_predict=num_predict)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="session")
def real_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealModel]:
    """The real-model adapter on a free loopback port, for the whole session."""
    with serve(tmp_path_factory.mktemp("real-model") / "stderr.log") as model:
        yield model


@pytest.fixture
def real_config(db_path: Path, real_model: RealModel) -> config.Config:
    """Configuration pointing at a fresh database and at the real-model adapter."""
    return config.load(
        {
            "SCANSCRIBE_DB": str(db_path),
            "OLLAMA_HOST": real_model.url,
            "SCANSCRIBE_OLLAMA_TIMEOUT": "120",
        }
    )
