"""The Audit page: admins only; every event with who, when, what and outcome; filters; CSV."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import ui
from auth.users import add_user, edit_users
from config import PROJECT_ROOT as ROOT
from scanner import export
from store.audit import AuditEvent
from store.sqlite import SQLiteStore

PAGE = str(ROOT / "pages" / "audit.py")


@pytest.fixture
def audit_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SQLiteStore]:
    db = tmp_path / "audit.db"
    users = tmp_path / "users.toml"
    edit_users(users, lambda u: add_user(u, "adam", "admin", "admin password 1"))
    edit_users(users, lambda u: add_user(u, "ana", "analyst", "analyst password 1"))
    monkeypatch.setenv("SCANSCRIBE_DB", str(db))
    monkeypatch.setenv("SCANSCRIBE_USERS", str(users))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    ui._services.clear()
    store = SQLiteStore(db)
    now = time.time()
    store.append_audit(
        AuditEvent.new("ana", "analyst", "password", "scan", "127.0.0.1", at=now - 60)
    )
    store.append_audit(
        AuditEvent.new(
            "=cmd|' /C calc'!A0",
            "",
            "",
            "login",
            "=cmd",
            "failed",
            at=now - 30,
            address="192.0.2.9",
        )
    )
    store.append_audit(AuditEvent.new("adam", "admin", "password", "delete", "rep-1", at=now))
    yield store
    store.close()
    ui._services.clear()


def _as(name: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["_auth_cookie"] = ui._services().sessions.create(name, "password")
    return at.run()


def test_an_analyst_is_refused_the_audit_page_and_the_refusal_is_recorded(
    audit_db: SQLiteStore,
) -> None:
    at = _as("ana")
    assert not at.exception
    assert "audit.read" in at.error[0].value and not at.dataframe
    assert audit_db.list_audit(action="audit.read")[0].outcome == "denied"


def test_an_admin_sees_every_event_newest_first_and_filters_them(audit_db: SQLiteStore) -> None:
    at = _as("adam")
    assert not at.exception
    frame = at.dataframe[0].value
    assert frame["action"].tolist() == ["delete", "login", "scan"]
    assert frame["outcome"].tolist() == ["ok", "failed", "ok"]
    assert frame["from"].tolist()[1] == "192.0.2.9"
    at.multiselect(key="audit_who").select("ana").run()
    assert at.dataframe[0].value["action"].tolist() == ["scan"]
    at.multiselect(key="audit_who").unselect("ana").run()
    at.multiselect(key="audit_action").select("login").run()
    assert at.dataframe[0].value["who"].tolist() == ["=cmd|' /C calc'!A0"]
    assert at.get("download_button")[0].proto.label == "Export CSV"


def test_the_csv_export_is_the_listed_rows_with_inert_cells(audit_db: SQLiteStore) -> None:
    back = pd.read_csv(io.StringIO(export.audit_events_csv(audit_db.list_audit())))
    assert back["action"].tolist() == ["delete", "login", "scan"]
    assert list(back.columns) == list(export.AUDIT_EVENT_COLUMNS)
    assert back["who"].iloc[1].startswith("'") and back["target"].iloc[1].startswith("'")
