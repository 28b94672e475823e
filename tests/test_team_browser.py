"""A real `streamlit run` bound to 0.0.0.0, as a team would serve it, reached through 127.0.0.1."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

import ui
from auth.users import add_user, edit_users
from config import PROJECT_ROOT as ROOT
from store.sqlite import SQLiteStore
from tests.store_samples import full_report

SECRET_HOST = "crown-jewels.internal"  # a host name only the stored report holds


def _seed(db: Path) -> str:
    store = SQLiteStore(db)
    rep = full_report("rep-team")
    first = replace(rep.hosts[0], hostnames=(SECRET_HOST,))
    store.save_report(replace(rep, hosts=(first, *rep.hosts[1:])))
    store.close()
    return "rep-team"


def test_every_page_fails_closed_when_exposed_without_a_login(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = tmp_path / "closed.db"
    _seed(db)
    monkeypatch.setenv("SCANSCRIBE_DB", str(db))
    monkeypatch.delenv("SCANSCRIBE_USERS", raising=False)
    monkeypatch.delenv("SCANSCRIBE_PASSWORD_HASH", raising=False)
    ui._services.clear()
    old = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        for name, _title, _icon in ui.PAGES:
            at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=30).run()
            assert not at.exception, name
            shown = str(at._tree)
            assert "ScanScribe is closed" in " ".join(e.value for e in at.error), name
            assert "rep-team" not in shown and SECRET_HOST not in shown, name
            assert "SCANSCRIBE_USERS" in " ".join(m.value for m in at.markdown), name
    finally:
        st_config.set_option("server.address", old)
        ui._services.clear()


@pytest.mark.browser
def test_exposed_dashboard_without_login_shows_no_report_data(
    tmp_path: Path, artifacts: Path
) -> None:
    from tests.browser import chromium_page, streamlit_server

    db = tmp_path / "open.db"
    report_id = _seed(db)
    env = {"SCANSCRIBE_DB": str(db), "OLLAMA_HOST": "http://127.0.0.1:9"}
    with (
        streamlit_server(env, artifacts / "team-closed-streamlit.log", address="0.0.0.0") as url,
        chromium_page() as page,
    ):
        for path in ("/", "/reports", f"/reports?report={report_id}", "/audit"):
            page.goto(url + path, wait_until="domcontentloaded")
            page.get_by_text("ScanScribe is closed").wait_for(timeout=30_000)
            body = page.inner_text("body")
            assert report_id not in body and SECRET_HOST not in body, path
        page.screenshot(path=str(artifacts / "team-closed.png"), full_page=True)


@pytest.mark.browser
def test_a_viewer_reads_reports_without_controls_and_stays_logged_in(
    tmp_path: Path, artifacts: Path
) -> None:
    from tests.browser import chromium_page, streamlit_server

    db = tmp_path / "team.db"
    _seed(db)
    users = tmp_path / "users.toml"
    edit_users(users, lambda u: add_user(u, "vera", "viewer", "viewer password 1"))
    env = {
        "SCANSCRIBE_DB": str(db),
        "SCANSCRIBE_USERS": str(users),
        "OLLAMA_HOST": "http://127.0.0.1:9",
    }
    with (
        streamlit_server(env, artifacts / "team-viewer-streamlit.log", address="0.0.0.0") as url,
        chromium_page() as page,
    ):
        page.goto(url + "/reports", wait_until="domcontentloaded")
        page.locator(".st-key-login_password button").click()
        page.locator("#name").fill("vera")
        page.locator("#password").fill("wrong password!!")
        page.locator("#login").click()
        page.get_by_text("Wrong name or password").wait_for(timeout=30_000)
        page.locator("#name").fill("vera")
        page.locator("#password").fill("viewer password 1")
        page.locator("#login").click()
        page.get_by_text("History").first.wait_for(timeout=30_000)
        assert "/reports" in page.url
        page.get_by_text("Logged in as vera · viewer").wait_for(timeout=30_000)
        assert page.locator(".st-key-import_files").count() == 0
        page.get_by_role("tab", name="Export and delete").click()
        page.locator(".st-key-dl_json").wait_for(timeout=30_000)
        assert page.locator(".st-key-delete_report").count() == 0
        page.screenshot(path=str(artifacts / "team-viewer-reports.png"), full_page=True)

        page.reload(wait_until="domcontentloaded")  # a reload keeps the login
        page.get_by_text("History").first.wait_for(timeout=30_000)
        tab = page.context.new_page()  # so does a new tab
        tab.goto(url + "/scan", wait_until="domcontentloaded")
        tab.get_by_text("it can read reports but not start scans").wait_for(timeout=30_000)
        assert tab.locator(".st-key-scan_targets").count() == 0
        tab.screenshot(path=str(artifacts / "team-viewer-scan.png"), full_page=True)

        tab.locator(".st-key-logout button").click()  # logout ends it in every tab
        tab.locator("#password").wait_for(timeout=30_000)
        page.goto(url + "/reports", wait_until="domcontentloaded")
        page.get_by_text("Log in to use ScanScribe").wait_for(timeout=30_000)
        assert SECRET_HOST not in page.inner_text("body")
        assert page.context.cookies() == [] or all(
            c["name"] != "scanscribe_session" for c in page.context.cookies()
        )
    trail = SQLiteStore(db).list_audit(action="login")
    assert [e.outcome for e in reversed(trail)] == ["failed", "ok"]
    assert all(e.address == "127.0.0.1" for e in trail)
