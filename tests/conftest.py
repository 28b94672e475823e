"""Shared fixtures. Each area keeps its own in tests/fixtures_*.py, registered here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import config
from services import Services, build
from store.sqlite import SQLiteStore

pytest_plugins = [
    "tests.fixtures_scanner",
    "tests.fixtures_ollama",
    "tests.fixtures_firestore",
    "tests.fixtures_real_model",
    "tests.fixtures_workers",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Dashboards started by tests run no background scheduler unless a test turns it on.
os.environ.setdefault("SCANSCRIBE_SCHEDULER", "off")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Under CI a skipped test is a failure: CI has every dependency, `make test` installs it."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which installs everything: {report.longrepr}"
    return report


@pytest.fixture
def artifacts() -> Path:
    """The folder where tests keep screenshots and other artifacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file for one test."""
    return tmp_path / "scanscribe.db"


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[SQLiteStore]:
    """A fresh embedded store for one test."""
    s = SQLiteStore(db_path)
    yield s
    s.close()


@pytest.fixture
def test_config(db_path: Path) -> config.Config:
    """Configuration for one test: its own database, loopback scope, no Ollama."""
    return config.load({"SCANSCRIBE_DB": str(db_path), "OLLAMA_HOST": "http://127.0.0.1:9"})


@pytest.fixture
def services(test_config: config.Config) -> Iterator[Services]:
    """Services built from the test configuration."""
    svc = build(test_config)
    yield svc
    svc.close()
