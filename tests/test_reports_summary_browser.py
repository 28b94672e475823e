"""The Reports page in a real chromium: a saved summary's invented claims are marked, and boxed."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.parser import parse_report
from store.records import Summary
from store.sqlite import SQLiteStore
from tests.browser import chromium_page, streamlit_server

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).parent / "fixtures"
TEXT = "Close Redis on 10.231.7.2 port 6379 now. Also patch CVE-2099-0001 on 10.231.7.99."


def test_reports_page_marks_a_saved_summarys_invented_claims(
    tmp_path: Path, artifacts: Path
) -> None:
    db = tmp_path / "r.db"
    store = SQLiteStore(db)
    report = parse_report((FIXTURES / "netns_after.xml").read_bytes(), report_id="rep-after")
    store.save_report(report)
    store.save_summary(
        Summary(
            id="sum-b",
            report_id=report.id,
            model="mistral:7b",
            audience="executive",
            text=TEXT,
            status="complete",
            created_at=1_700_000_000.0,
        )
    )
    store.close()
    env = {
        "SCANSCRIBE_DB": str(db),
        "SCANSCRIBE_STORE": "sqlite",
        "OLLAMA_HOST": "http://127.0.0.1:9",
    }
    with (
        streamlit_server(env, artifacts / "browser-reports-summary-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url + "/reports", wait_until="domcontentloaded")
        page.get_by_text("Saved executive summaries").first.click(timeout=60_000)
        text = page.locator(".st-key-report_summary_sum-b_text")
        text.get_by_text("Close Redis on", exact=False).wait_for(timeout=30_000)
        page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=30_000)

        def marked(value: str) -> bool:
            """Whether ``value`` is shown bold on a coloured background in the summary text."""
            strong = text.locator("strong", has_text=value)
            if strong.count() == 0:
                return False
            colour = strong.first.evaluate(
                "el => getComputedStyle(el.closest('span') || el).backgroundColor"
            )
            return colour not in ("rgba(0, 0, 0, 0)", "transparent")

        assert marked("CVE-2099-0001") and marked("10.231.7.99")
        assert not marked("10.231.7.2"), "a host the scan has is not marked"
        summaries = page.locator("[data-testid='stExpander']", has_text="Saved executive")
        warning = summaries.locator("[data-testid='stAlert']", has_text="not in the scan data")
        assert "2 claim(s) are not in the scan data" in warning.inner_text()
        # The box lists the claims to verify in a table.
        summaries.locator("[data-testid='stDataFrame']").wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / "reports-summary-fact-check.png"), full_page=True)
