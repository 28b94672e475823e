"""The Scan page driven through AppTest: refusals, a real loopback scan, cancel, results."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

import config
import ui
from config import PROJECT_ROOT as ROOT
from scanner.models import Host, Port, Report, Script
from store.records import Job
from store.sqlite import SQLiteStore
from tests.fixtures_scanner import group_alive, wait_for

pytestmark = pytest.mark.nmap

PAGE = str(ROOT / "pages" / "scan.py")


@pytest.fixture
def page_env(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[Path]:
    """Point the page at a fresh database; stop its runner afterwards."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    monkeypatch.delenv("STREAMLIT_SERVER_ADDRESS", raising=False)
    ui._services.clear()
    yield db_path
    ui._services().close()
    ui._services.clear()


def jobs_in(db_path: Path) -> list[Job]:
    store = SQLiteStore(db_path)
    try:
        return store.list_jobs()
    finally:
        store.close()


def fill(
    at: AppTest, targets: str, profile: str = "quick", ports: str = "", ok: bool = True
) -> None:
    at.text_input(key="scan_targets").input(targets)
    at.selectbox(key="scan_profile").select(profile)
    at.text_input(key="scan_ports").input(ports)
    if ok:
        at.checkbox(key="scan_authorized").check()
    else:
        at.checkbox(key="scan_authorized").uncheck()
    at.button(key="scan_submit").click().run()


def errors(at: AppTest, raw: bool = False) -> str:
    """The error messages as the analyst reads them (markdown escapes removed unless raw)."""
    text = "\n".join(str(e.value) for e in at.error)
    return text if raw else re.sub(r"\\(.)", r"\1", text)


def test_refusals_are_shown_and_nothing_starts(page_env: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    fill(at, "127.0.0.1 -oN /tmp/scan-page-x")
    assert "'-oN'" in errors(at) and "starts with '-'" in errors(at)
    fill(at, "10.1.2.3")
    assert "'10.1.2.3'" in errors(at) and "outside the scope" in errors(at)
    fill(at, "127.0.0.1", ports="22 --script=x")
    assert "'22 --script=x'" in errors(at)
    fill(at, "[x](javascript:alert(1))")
    assert "\\[x\\]\\(javascript\\:alert\\(1\\)\\)" in errors(at, raw=True)  # never a link
    fill(at, "127.0.0.1", ok=False)
    assert "authorized" in errors(at)
    assert jobs_in(page_env) == []
    assert not Path("/tmp/scan-page-x").exists()


def test_a_real_scan_runs_and_its_report_is_shown(
    page_env: Path, listen: Callable[..., int]
) -> None:
    port = listen()
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    fill(at, "127.0.0.1", "quick", str(port))
    assert not at.exception
    assert "queued" in str(at.success[0].value)

    def finished() -> bool:
        at.run()
        return any("done" in e.label for e in at.expander)

    wait_for(finished, timeout=60, every=0.2)
    assert not at.exception
    (job,) = jobs_in(page_env)
    assert job.status == "done" and job.progress == 100.0
    tables = [d.value for d in at.dataframe]
    ports = next(t for t in tables if "port" in t.columns and "state" in t.columns)
    assert ports.loc[ports["port"] == port, "state"].tolist() == ["open"]
    assert any("127.0.0.1" in t.value for t in at.text)


def test_cancel_button_stops_a_running_scan(page_env: Path, silent_port: int) -> None:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    fill(at, "127.0.0.1", "standard", str(silent_port))

    def running() -> Job | None:
        jobs = jobs_in(page_env)
        return jobs[0] if jobs and jobs[0].status == "running" and jobs[0].pgid else None

    job = wait_for(running, timeout=30)
    assert isinstance(job, Job)
    at.run()
    assert at.progress, "a running job shows a progress bar"
    at.button(key=f"cancel_{job.id}").click().run()
    assert jobs_in(page_env)[0].status == "cancelled"
    assert not group_alive(job.pgid or 0)
    at.run()
    assert any("cancelled" in e.label for e in at.expander)


def test_timed_out_hosts_and_hostile_output_render_safely(page_env: Path) -> None:
    store = SQLiteStore(page_env)
    hostile = "<img src=x onerror=alert(1)> [click](javascript:alert(1))"
    try:
        store.save_report(
            Report(
                id="report-page-1",
                targets=("127.0.0.5-6",),
                hosts=(
                    Host("127.0.0.5", timed_out=True),
                    Host(
                        "127.0.0.6",
                        ports=(
                            Port(
                                80,
                                "tcp",
                                "open",
                                service="http",
                                scripts=(Script("http-title", hostile),),
                            ),
                        ),
                    ),
                ),
            )
        )
        store.save_job(
            Job(
                "job-page-1",
                ("127.0.0.5-6",),
                "quick",
                status="done",
                report_id="report-page-1",
                progress=100.0,
                created_at=1.0,
                owner=config.load().user,
            )
        )
    finally:
        store.close()
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert any("Host timed out" in str(w.value) for w in at.warning)
    assert not any("No open ports" in str(c.value) for c in at.caption)
    assert [c.value for c in at.code] == [hostile]
    assert all(hostile not in str(m.value) for m in at.markdown)


def test_scans_are_refused_beyond_loopback_without_login(page_env: Path) -> None:
    old = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(PAGE, default_timeout=30).run()
    finally:
        st_config.set_option("server.address", old)
    assert "no login is configured" in errors(at)
    # The whole page fails closed: no form to press at all.
    assert not [b for b in at.button if b.key == "scan_submit"]
    assert jobs_in(page_env) == []


def test_root_profiles_are_disabled_and_explained_without_root(
    page_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page asks the operating system who it runs as; tests here run as root, so the answer
    # is replaced for this one page run.
    monkeypatch.setattr("scanner.nmapbin.is_root", lambda: False)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    options = at.selectbox(key="scan_profile").options
    assert not any(o.startswith(("Deep", "UDP")) for o in options)
    assert any(o.startswith("Quick") for o in options)
    assert any("need root" in str(c.value) for c in at.caption)
