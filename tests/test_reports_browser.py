"""Reports in a real chromium: names and labels taken from an imported file render inert."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.models import Host, Port, Report, Script
from store.sqlite import SQLiteStore
from tests.browser import chromium_page, streamlit_server

pytestmark = pytest.mark.browser

# Bare domains, URLs and e-mail addresses become links in GitHub-flavoured markdown even when
# every punctuation character is backslash-escaped; a hostile file can put them anywhere.
AUTOLINKS = "www.evil.example https://evil.example/x admin@evil.example"


def test_script_ids_and_versions_from_a_file_never_become_links(
    tmp_path: Path, artifacts: Path
) -> None:
    db = tmp_path / "r.db"
    store = SQLiteStore(db)
    store.save_report(
        Report(
            id="rep-hostile",
            source="import:hostile.xml",
            nmap_version=AUTOLINKS,
            note=f"cut short {AUTOLINKS}",
            complete=False,
            created_at=1_700_000_000.0,
            hosts=(
                Host(
                    "127.0.0.1",
                    hostnames=("www.evil.example",),
                    ports=(
                        Port(80, "tcp", "open", service="http", scripts=(Script(AUTOLINKS, "x"),)),
                    ),
                    scripts=(Script("[click](javascript:alert(1)) " + AUTOLINKS, "y"),),
                ),
            ),
        )
    )
    store.close()
    env = {
        "SCANSCRIBE_DB": str(db),
        "SCANSCRIBE_STORE": "sqlite",
        "OLLAMA_HOST": "http://127.0.0.1:9",
    }
    with (
        streamlit_server(env, artifacts / "browser-reports-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url + "/reports", wait_until="domcontentloaded")
        page.get_by_text("Script output").first.wait_for(timeout=60_000)
        main = page.locator("[data-testid='stMain']")
        main.get_by_text("evil.example", exact=False).first.wait_for(timeout=30_000)
        page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=30_000)
        page.locator("[data-testid='stMetric']").first.wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / "reports-hostile-labels.png"), full_page=True)
        links = main.locator("a[href^='http'], a[href^='mailto'], a[href^='javascript']")
        assert links.count() == 0, [
            links.nth(i).get_attribute("href") for i in range(links.count())
        ]
        # The text is all there for the analyst to read, only inert.
        shown = main.inner_text().replace("\u200b", "")
        assert "www.evil.example" in shown and "admin@evil.example" in shown
