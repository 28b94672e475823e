"""Summarize in a real chromium: changing the report resets the earlier report of a diff."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import expect

from store.sqlite import SQLiteStore
from tests.browser import chromium_page, streamlit_server
from tests.fixtures_ollama import sample_report
from tests.ollama_double import ModelScript, OllamaDouble

pytestmark = pytest.mark.browser

DAY = 86_400.0
NOW = 1_800_000_000.0


def _saved(db: Path) -> SQLiteStore:
    store = SQLiteStore(db)
    web = sample_report("r-web", NOW)
    lab = replace(web, targets=("192.0.2.0/24",))
    for r in (
        web,
        replace(web, id="r-web-old", created_at=NOW - 7 * DAY),
        replace(lab, id="r-lab", created_at=NOW - DAY),
        # A 2016 scan of the lab imported last: the newest import, the oldest scan.
        replace(lab, id="r-lab-2016", started_at=1_460_000_000.0, created_at=NOW + 60, profile=""),
    ):
        store.save_report(r)
    return store


def test_changing_the_report_resets_the_earlier_report_in_chromium(
    tmp_path: Path, artifacts: Path, ollama_double: OllamaDouble
) -> None:
    db = tmp_path / "b.db"
    _saved(db).close()
    ollama_double.models["llama3.2:latest"] = ModelScript(answer="Telnet is open on 23/tcp.")
    env = {"SCANSCRIBE_DB": str(db), "OLLAMA_HOST": ollama_double.url, "SCANSCRIBE_STORE": "sqlite"}
    with (
        streamlit_server(env, artifacts / "browser-diff-picker-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url + "/summarize", wait_until="domcontentloaded")
        page.locator(".st-key-sum_go button").wait_for(timeout=30_000)
        page.locator(".st-key-sum_mode").get_by_text("Changes since an earlier report").click()
        base = page.locator(".st-key-sum_base input")
        expect(base).to_have_value(re.compile(r" · r-web-old$"), timeout=30_000)

        page.locator(".st-key-sum_report input").click()
        page.get_by_role("option", name=re.compile(r" · r-lab$")).click()
        expect(base).to_have_value(re.compile(r" · r-lab-2016$"), timeout=30_000)
        warning = page.get_by_text("These two reports are not scans of the same thing")
        warning.wait_for(timeout=30_000)
        assert "the profiles differ" in warning.inner_text()
        # Only older scans of overlapping targets are offered.
        base.click()
        offered = page.get_by_role("option").all_inner_texts()
        assert len(offered) == 1 and offered[0].endswith(" · r-lab-2016"), offered
        page.keyboard.press("Escape")
        page.screenshot(path=str(artifacts / "summarize-diff-picker.png"), full_page=True)

        page.locator(".st-key-sum_go button").click()
        current = page.locator(".st-key-sum_current")
        current.get_by_text("Complete.").wait_for(timeout=30_000)
        assert "changes from r-lab-2016 (192.0.2.0/24; scanned 2016-04-07" in current.inner_text()
    store = SQLiteStore(db)
    try:
        (saved,) = store.list_summaries("r-lab")
    finally:
        store.close()
    assert (saved.report_id, saved.base_report_id) == ("r-lab", "r-lab-2016")
