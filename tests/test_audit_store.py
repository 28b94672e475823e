"""The audit trail in each store: append-only, filtered, and fed by the actions themselves."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import actions
import auth
import config
from auth.users import add_user, edit_users
from services import Services, build
from store.audit import AuditEvent
from store.base import Store
from store.sqlite import SQLiteStore
from tests.fixtures_firestore import firestore_env
from tests.store_samples import comparison, full_report, job

ROLES = {"vera": "viewer", "ana": "analyst", "adam": "admin"}


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def team(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """Services on each backend, with a viewer, an analyst and an admin."""
    users = tmp_path / "users.toml"
    for name, role in ROLES.items():
        edit_users(users, lambda u, n=name, r=role: add_user(u, n, r, f"{n} password 12"))
    env = {"SCANSCRIBE_DB": str(tmp_path / "a.db"), "OLLAMA_HOST": "http://127.0.0.1:9"}
    if request.param == "firestore":
        emulator = request.getfixturevalue("firestore_emulator")
        project = request.getfixturevalue("firestore_project")
        env = firestore_env(emulator.host, tmp_path / "a.db", project)
    svc = build(config.load({**env, "SCANSCRIBE_USERS": str(users)}))
    yield svc
    svc.close()


def _who(name: str) -> auth.Identity:
    return auth.Identity(name, ROLES[name], "password", "192.0.2.1")


def test_each_action_lands_in_the_audit_trail_of_the_store(team: Services) -> None:
    svc = team
    svc.store.save_report(full_report("rep-1"))
    svc.store.save_job(replace(job("job-1", time.time()), owner="ana"))
    svc.store.save_comparison(comparison("cmp-1", "rep-1", time.time()))
    actions.record_export(svc, _who("vera"), "JSON", "rep-1")
    with pytest.raises(auth.Forbidden):
        actions.delete_report(svc, _who("vera"), "rep-1")
    actions.cancel_scan(svc, _who("ana"), "job-1")
    actions.save_verdict(svc, _who("ana"), "cmp-1", "tie", "both fine")
    actions.delete_report(svc, _who("adam"), "rep-1")
    svc.gate.record(None, "login", "mallory", "failed", "wrong name or password", name="mallory")
    trail = svc.store.list_audit()
    got = [(e.actor, e.action, e.target, e.outcome) for e in reversed(trail)]
    assert got == [
        ("vera", "export", "rep-1", "ok"),
        ("vera", "delete", "rep-1", "denied"),
        ("ana", "cancel", "job-1", "ok"),
        ("ana", "verdict", "cmp-1", "ok"),
        ("adam", "delete", "rep-1", "ok"),
        ("mallory", "login", "mallory", "failed"),
    ]
    assert [e.actor for e in svc.store.list_audit(actor="ana")] == ["ana", "ana"]
    assert [e.target for e in svc.store.list_audit(action="delete")] == ["rep-1", "rep-1"]
    mid = trail[2].at
    assert all(e.at >= mid for e in svc.store.list_audit(since=mid))
    assert all(e.at <= mid for e in svc.store.list_audit(until=mid))
    assert len(svc.store.list_audit(limit=2)) == 2


def test_a_retried_event_is_kept_once(team: Services) -> None:
    event = AuditEvent.new("ana", "analyst", "password", "import", "a.xml")
    team.store.append_audit(event)
    team.store.append_audit(event)
    assert [e.id for e in team.store.list_audit()] == [event.id]


def test_sqlite_refuses_to_change_or_delete_an_event(tmp_path: Path) -> None:
    store: Store = SQLiteStore(tmp_path / "s.db")
    store.append_audit(AuditEvent.new("ana", "analyst", "password", "scan", "127.0.0.1"))
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET actor = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log")
    assert store.list_audit()[0].actor == "ana"
