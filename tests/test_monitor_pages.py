"""The Schedules and Alerts pages through AppTest: add (and refuse) a schedule, pause it, read
an alert whose scan text is hostile, and mark it read."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from config import PROJECT_ROOT as ROOT
from monitor.storage import SQLiteMonitorStore
from store.sqlite import SQLiteStore
from tests.test_monitor_alerts import (
    HOSTILE_PRODUCT,
    HOSTILE_TELNET,
    _run,
    no_brief,
    report,
    schedule,
)
from widgets import schedules as schedule_widgets

SCHEDULES = str(ROOT / "pages" / "schedules.py")
ALERTS = str(ROOT / "pages" / "alerts.py")


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[SQLiteMonitorStore]:
    """A fresh database for the pages, with the cached services and stores cleared around."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("SCANSCRIBE_SCHEDULER", "off")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    monkeypatch.delenv("SCANSCRIBE_SMTP_URL", raising=False)
    ui._services.clear()
    schedule_widgets._monitor_store.clear()
    store = SQLiteMonitorStore(db_path)
    yield store
    store.close()
    ui._services.clear()
    schedule_widgets._monitor_store.clear()


def _fill(at: AppTest, targets: str) -> AppTest:
    at.text_input(key="sched_name").input("nightly lab")
    at.text_input(key="sched_targets").input(targets)
    at.selectbox(key="sched_profile").select("quick")
    at.text_input(key="sched_ports").input("22,80")
    at.text_input(key="sched_cadence").input("6h")
    at.text_area(key="sched_webhooks").input("https://hooks.example.com/T0/s3cr3t")
    return at.button(key="sched_add").click().run()


def test_a_schedule_is_added_shown_and_paused_and_bad_input_saves_nothing(
    app_env: SQLiteMonitorStore,
) -> None:
    at = AppTest.from_file(SCHEDULES, default_timeout=30).run()
    assert not at.exception
    at = _fill(at, "10.9.9.9")
    assert "Target '10.9.9.9' refused" in at.error[0].value
    assert app_env.list_schedules() == []
    at = _fill(at, "127.0.0.1")
    assert not at.error, [e.value for e in at.error]
    [saved] = app_env.list_schedules()
    assert saved.name == "nightly lab" and saved.every_s == 6 * 3600 and saved.ports == "22,80"
    [table] = [d.value for d in at.dataframe if "cadence" in d.value.columns]
    assert list(table["name"]) == ["nightly lab"] and list(table["cadence"]) == ["every 6h"]
    assert list(table["webhooks"]) == ["https://hooks.example.com/…"]  # no secret path shown
    at = at.button(key="sched_pause").click().run()
    assert not app_env.get_schedule(saved.id).active
    assert at.button(key="sched_resume")


def test_an_alert_with_hostile_scan_text_renders_inert_and_can_be_marked_read(
    app_env: SQLiteMonitorStore, db_path: Path
) -> None:
    from monitor.scheduler import prepare_alert

    main = SQLiteStore(db_path)
    old, new = report("r-old"), report("r-new", HOSTILE_TELNET)
    main.save_report(old)
    main.save_report(new)
    main.close()
    s = schedule(webhooks=("https://hooks.example.com/x/s3cr3t",), emails=())
    alert, deliveries = prepare_alert(s, _run(s), old, new, no_brief, time.time())
    assert alert is not None
    app_env.save_alert(alert, deliveries)

    at = AppTest.from_file(ALERTS, default_timeout=30).run()
    assert not at.exception
    assert at.metric[0].value == "1"
    [opened] = [d.value for d in at.dataframe if "product" in d.value.columns]
    assert list(opened["product"]) == [HOSTILE_PRODUCT]  # a table cell: plain text
    assert any("127.0.0.1:23/tcp" in t.value for t in at.text)
    markdown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    for live in ("<script", "](http", "javascript:", "s3cr3t"):
        assert live not in markdown, live
    # The diff of the two reports is on the page too.
    assert [m.value for m in at.metric if m.label == "Opened ports"] == ["1"]
    at = at.button(key="alerts_read").click().run()
    assert app_env.unread_count() == 0
    assert at.metric[0].value == "0"
