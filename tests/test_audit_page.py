"""The Audit page lists every scan with who, when, targets, profile and outcome, and exports it."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import ui
from config import PROJECT_ROOT as ROOT
from scanner import export
from store.records import Job
from store.sqlite import SQLiteStore


@pytest.fixture
def audit_db(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[SQLiteStore]:
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    ui._services.clear()
    store = SQLiteStore(db_path)
    now = time.time()
    store.save_job(
        Job("job-a", ("127.0.0.1",), "quick", owner="ana", status="done", created_at=now - 60)
    )
    store.save_job(
        Job("job-b", ("::1",), "standard", owner="bo", status="cancelled", created_at=now)
    )
    yield store
    store.close()
    ui._services.clear()


def test_audit_lists_scans_and_filters_by_who(audit_db: SQLiteStore) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "audit.py"), default_timeout=30).run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert frame["job"].tolist() == ["job-b", "job-a"]  # newest first
    assert frame["who"].tolist() == ["bo", "ana"]
    assert frame["outcome"].tolist() == ["cancelled", "done"]
    at.multiselect(key="audit_who").select("ana").run()
    assert at.dataframe[0].value["job"].tolist() == ["job-a"]


def test_audit_export_is_the_listed_rows_as_csv(audit_db: SQLiteStore) -> None:
    jobs = audit_db.list_jobs()
    jobs.append(Job("job-c", ("=cmd|' /C calc'!A0",), "quick", owner="@evil", status="failed"))
    back = pd.read_csv(io.StringIO(export.audit_csv(jobs)))
    assert back["job"].tolist() == ["job-b", "job-a", "job-c"]
    assert list(back.columns) == list(export.AUDIT_COLUMNS)
    # Cells that a spreadsheet would run as formulas are made inert.
    assert back["targets"].iloc[2].startswith("'") and back["who"].iloc[2].startswith("'")
    at = AppTest.from_file(str(ROOT / "pages" / "audit.py"), default_timeout=30).run()
    assert at.get("download_button")[0].proto.label == "Export CSV"
