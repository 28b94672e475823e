"""Click-through and live scan status in a real chromium: rows open reports, addresses survive a
reload and go to a colleague, buttons open Summarize preselected, and a running scan shows its
phase in words and a badge in the sidebar on every page."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

import ui
from store.records import Summary
from store.sqlite import SQLiteStore
from tests.browser import chromium_page, streamlit_server
from tests.fixtures_ollama import sample_report

pytestmark = pytest.mark.browser

NOW = 1_800_000_000.0


def _env(db: Path) -> dict[str, str]:
    return {
        "SCANSCRIBE_DB": str(db),
        "SCANSCRIBE_STORE": "sqlite",
        "OLLAMA_HOST": "http://127.0.0.1:9",
    }


def _idle(page: Any) -> None:
    """Wait until the app has finished its run (the running indicator is gone)."""
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=30_000)


def _click_row(page: Any, table_key: str, row: int) -> None:
    """Select a data row of a dataframe by clicking its row-selection cell (row 0 is the first)."""
    grid = page.locator(f".st-key-{table_key} [data-testid='stDataFrameResizable']")
    grid.wait_for(timeout=30_000)
    box = grid.bounding_box()
    assert box is not None
    row_height = 35  # Streamlit's default row height, header included
    page.mouse.click(box["x"] + 18, box["y"] + row_height * (row + 1) + row_height / 2)


def test_rows_buttons_and_addresses_open_reports_in_chromium(
    tmp_path: Path, artifacts: Path
) -> None:
    db = tmp_path / "nav.db"
    store = SQLiteStore(db)
    new = sample_report("rep-new", NOW)
    store.save_report(new)
    store.save_report(replace(new, id="rep-old", created_at=NOW - 86_400))
    store.save_summary(
        Summary(id="sum-1", report_id="rep-old", model="m:1", audience="executive",
                text="Telnet is open on 10.0.0.5.", status="complete", created_at=NOW)
    )  # fmt: skip
    store.close()
    log = artifacts / "browser-navigation-streamlit.log"
    with streamlit_server(_env(db), log) as url, chromium_page() as page:
        # A row of Latest reports on the Overview opens that report on Reports, by address.
        page.goto(url + "/", wait_until="domcontentloaded")
        page.get_by_text("Latest reports").wait_for(timeout=60_000)
        _idle(page)
        _click_row(page, "latest_reports", 1)
        page.wait_for_url(re.compile(r"/reports\?report=rep-old$"), timeout=30_000)
        picker = page.locator(".st-key-report_pick input")
        expect(picker).to_have_value(re.compile(r" · rep-old$"), timeout=30_000)

        # A History row opens its report and the address follows.
        _idle(page)
        _click_row(page, "history_table", 0)
        expect(picker).to_have_value(re.compile(r" · rep-new$"), timeout=30_000)
        page.wait_for_url(re.compile(r"report=rep-new"), timeout=30_000)
        page.screenshot(path=str(artifacts / "navigation-history-row.png"), full_page=True)

        # The address, filters included, survives a reload and goes to a colleague's new tab.
        host_filter = page.locator(".st-key-filter_host input")
        host_filter.fill("10.0.0.5")
        host_filter.press("Enter")
        page.wait_for_url(re.compile(r"filter_host=10\.0\.0\.5"), timeout=30_000)
        page.reload(wait_until="domcontentloaded")
        expect(picker).to_have_value(re.compile(r" · rep-new$"), timeout=30_000)
        expect(host_filter).to_have_value("10.0.0.5", timeout=30_000)
        colleague = page.context.new_page()
        colleague.goto(url + "/reports?diff=rep-old..rep-new", wait_until="domcontentloaded")
        expect(colleague.locator(".st-key-diff_old input")).to_have_value(
            re.compile(r" · rep-old$"), timeout=30_000
        )
        expect(colleague.get_by_role("tab", name="Diff")).to_have_attribute("aria-selected", "true")
        colleague.goto(url + "/reports?report=rep-missing", wait_until="domcontentloaded")
        colleague.get_by_text("No report has the id 'rep-missing'").wait_for(timeout=30_000)
        colleague.close()

        # Summarize this opens Summarize with the report picked; a summary has its own address.
        _idle(page)
        page.locator(".st-key-go_summarize button").click()
        page.wait_for_url(re.compile(r"/summarize\?report=rep-new"), timeout=30_000)
        expect(page.locator(".st-key-sum_report input")).to_have_value(
            re.compile(r" · rep-new$"), timeout=30_000
        )
        page.goto(url + "/summarize?summary=sum-1", wait_until="domcontentloaded")
        page.get_by_text("Telnet is open on").first.wait_for(timeout=30_000)
        expect(page.locator(".st-key-sum_report input")).to_have_value(
            re.compile(r" · rep-old$"), timeout=30_000
        )
        page.screenshot(path=str(artifacts / "navigation-summary-address.png"), full_page=True)

        # Every page loads without a deprecation warning in the server's log.
        for _file, title, _icon in ui.PAGES:
            page.get_by_role("link", name=title, exact=True).first.click()
            page.get_by_role("heading").first.wait_for(timeout=30_000)
            _idle(page)
    # Streamlit words them "... is deprecated", "Please replace `x` with `y`", "will be removed".
    signs = ("deprecat", "please replace", "will be removed")
    warnings = [ln for ln in log.read_text().splitlines() if any(w in ln.lower() for w in signs)]
    assert not warnings, warnings


@pytest.mark.nmap
def test_a_running_scan_shows_its_phase_and_a_sidebar_badge_in_chromium(
    tmp_path: Path, artifacts: Path, silent_port: int
) -> None:
    db = tmp_path / "scan.db"
    SQLiteStore(db).close()
    log = artifacts / "browser-scan-progress-streamlit.log"
    with streamlit_server(_env(db), log) as url, chromium_page() as page:
        page.goto(url + "/scan", wait_until="domcontentloaded")
        page.locator(".st-key-scan_targets input").fill("127.0.0.1")
        page.locator(".st-key-scan_profile input").click()
        page.get_by_role("option", name=re.compile(r"^Standard")).click()
        page.locator(".st-key-scan_ports input").fill(str(silent_port))
        page.locator(".st-key-scan_authorized").get_by_text("I am authorized").click()
        page.locator(".st-key-scan_submit button").click()

        # Service detection waits on the silent port: the bar says so, in words, with the time.
        bar = page.get_by_text(re.compile(r"Step 3 of 4 · Service detection: .* overall \d+ %"))
        bar.first.wait_for(timeout=30_000)
        assert re.search(r"running \d", bar.first.inner_text())
        page.screenshot(path=str(artifacts / "scan-progress-phase.png"), full_page=True)

        # Another page: the sidebar says a scan of yours is running, with a way back.
        page.goto(url + "/reports", wait_until="domcontentloaded")
        badge = page.locator(".st-key-scan_badge")
        badge.get_by_text("Scan running").wait_for(timeout=30_000)
        _idle(page)
        page.screenshot(path=str(artifacts / "scan-running-badge.png"))
        badge.get_by_text("Follow it on the Scan page").click()
        page.wait_for_url(re.compile(r"/scan$"), timeout=30_000)
        page.locator("[class*='st-key-cancel_'] button").click()
        page.get_by_text("No scan is running.").wait_for(timeout=30_000)
        expect(page.locator(".st-key-scan_badge")).to_have_count(0, timeout=30_000)
