"""The dashboard served by `streamlit run`, opened in a real chromium: Overview and status."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page, streamlit_server

pytestmark = pytest.mark.browser


def test_overview_and_status_panel_in_chromium(tmp_path: Path, artifacts: Path) -> None:
    env = {
        "SCANSCRIBE_DB": str(tmp_path / "b.db"),
        "OLLAMA_HOST": "http://127.0.0.1:9",
        "SCANSCRIBE_STORE": "sqlite",
    }
    with (
        streamlit_server(env, artifacts / "browser-shell-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Start here").wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / "overview-first-run.png"), full_page=True)

        page.get_by_role("link", name="System status").click()
        page.get_by_role("heading", name="System status").wait_for(timeout=30_000)
        page.get_by_text("nmap", exact=False).first.wait_for(timeout=30_000)
        page.get_by_text("ollama serve", exact=False).wait_for(timeout=30_000)
        page.get_by_text("The store answers.").wait_for(timeout=30_000)
        body = page.inner_text("body")
        assert "found at" in body  # nmap is installed by `make test`
        assert "SQLite file" in body
        page.screenshot(path=str(artifacts / "system-status.png"), full_page=True)
