"""The app shell: pages render, Overview guides a new user, System status says what is missing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from config import PROJECT_ROOT as ROOT
from scanner.models import Host, Port, Report
from store.records import Summary
from store.sqlite import SQLiteStore
from tests.rendered import shown

PAGES = [
    "pages/overview.py",
    "pages/scan.py",
    "pages/reports.py",
    "pages/summarize.py",
    "pages/compare.py",
    "pages/status.py",
]


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[Path]:
    """Point the pages at a fresh database and at an Ollama address where nothing listens."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    ui._services.clear()
    yield db_path
    ui._services.clear()


def _texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption]
    parts += [e.value for e in at.text]
    for kind in ("error", "warning", "info", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(app_env: Path, page: str) -> None:
    at = AppTest.from_file(str(ROOT / page), default_timeout=30).run()
    assert not at.exception, at.exception
    assert at.title, f"{page} has no title"


def test_dashboard_navigation_runs(app_env: Path) -> None:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "ScanScribe"


def test_overview_first_run_tells_a_new_user_what_to_do(app_env: Path) -> None:
    at = AppTest.from_file(str(ROOT / "pages/overview.py"), default_timeout=30).run()
    assert [m.value for m in at.metric] == ["0", "0", "0", "0", "0"]
    first_run = at.get("flex_container")
    assert any(getattr(c, "key", None) == "first_run" for c in first_run) or "Start here" in str(
        at.subheader
    )
    assert "Scan" in _texts(at)


def test_overview_counts_reports_hosts_ports_and_summaries(app_env: Path) -> None:
    store = SQLiteStore(app_env)
    report = Report(
        id="r1",
        targets=("127.0.0.1",),
        profile="quick",
        created_at=time.time(),
        hosts=(
            Host("127.0.0.1", ports=(Port(22, "tcp", "open"), Port(80, "tcp", "open"))),
            Host("127.0.0.2", status="down"),
        ),
    )
    store.save_report(report)
    store.save_summary(
        Summary(id="s1", report_id="r1", model="m", audience="executive", created_at=time.time())
    )
    # An earlier scan of the same target: counted in Reports, not again in hosts and ports.
    store.save_report(
        Report(
            id="r0",
            targets=("127.0.0.1",),
            profile="quick",
            created_at=report.created_at - 3600,
            hosts=(Host("127.0.0.1", ports=tuple(Port(p, "tcp", "open") for p in range(20, 25))),),
        )
    )
    store.close()
    at = AppTest.from_file(str(ROOT / "pages/overview.py"), default_timeout=30).run()
    # Reports, hosts up now, open ports now, critical / high among them, summaries.
    assert [m.value for m in at.metric] == ["2", "1", "2", "0", "1"]
    assert "Open ports over time" in [s.value for s in at.subheader]
    assert len(at.get("vega_lite_chart")) == 2  # open ports by risk, and the trend
    frames = [d.value for d in at.dataframe]
    assert any("id" in f and f["id"].tolist() == ["r1", "r0"] for f in frames)
    assert any("model" in f and f["model"].tolist() == ["m"] for f in frames)


def test_status_says_how_to_start_ollama_when_it_is_down(app_env: Path) -> None:
    at = AppTest.from_file(str(ROOT / "pages/status.py"), default_timeout=30).run()
    assert not at.exception
    text = _texts(at)
    assert "ollama serve" in text
    assert "SQLite" in text and str(app_env) in text
    assert "nmap" in text


def test_bad_setting_is_shown_not_raised(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCANSCRIBE_SCOPE", "nowhere")
    at = AppTest.from_file(str(ROOT / "pages/overview.py"), default_timeout=30).run()
    assert not at.exception
    assert "SCANSCRIBE_SCOPE" in shown(at.error[0].value)


def test_status_says_how_to_install_nmap_when_it_is_missing(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages/status.py"), default_timeout=30).run()
    assert not at.exception
    assert any("apt-get install -y nmap" in e.value for e in at.error)
