"""Summarize in a real chromium: the text grows as it streams, renders inert, and Stop keeps it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from store.sqlite import SQLiteStore
from tests.browser import chromium_page, streamlit_server, watch_text
from tests.fixtures_ollama import sample_report
from tests.ollama_double import ModelScript, OllamaDouble

pytestmark = pytest.mark.browser

HOSTILE = (
    "Host 10.0.0.5 runs Telnet on 23/tcp. [click me](javascript:alert(1)) "
    "<img src=x onerror=alert(1)> ![beacon](https://evil.example/p.png) see https://evil.example "
    "and www.evil.example. Host 10.0.0.99 is invented."
)


def _words(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")]


def test_summary_streams_renders_inert_and_stops_in_chromium(
    tmp_path: Path, artifacts: Path, ollama_double: OllamaDouble
) -> None:
    db = tmp_path / "b.db"
    store = SQLiteStore(db)
    store.save_report(sample_report())
    store.close()
    ollama_double.models["llama3.2:latest"] = ModelScript(
        chunks=_words(HOSTILE) * 3, chunk_delay_s=0.05
    )
    env = {"SCANSCRIBE_DB": str(db), "OLLAMA_HOST": ollama_double.url, "SCANSCRIBE_STORE": "sqlite"}
    with (
        streamlit_server(env, artifacts / "browser-summarize-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url + "/summarize", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Summarize").wait_for(timeout=30_000)
        page.locator(".st-key-sum_go button").wait_for(timeout=30_000)
        page.locator(".st-key-sum_go button").click()
        current = page.locator(".st-key-sum_current")
        current.wait_for(timeout=30_000)

        def midway(lengths: list[int]) -> None:
            if len(lengths) == 5:
                page.screenshot(path=str(artifacts / "summarize-streaming.png"), full_page=True)

        lengths = watch_text(page, current, "Complete.", 30, midway)
        page.screenshot(path=str(artifacts / "summarize-complete.png"), full_page=True)
        growth = sorted(set(lengths))
        assert len(growth) >= 3, f"the text did not visibly grow: {lengths}"
        body = current.inner_text()
        assert "Complete." in body and "<img src=x onerror=alert(1)>" in body
        # Nothing from the model became a live link, an image or a script in the DOM.
        assert current.locator("a").count() == 0
        assert current.locator("img").count() == 0
        assert current.locator("script").count() == 0
        assert "not in the scan data — verify" in page.inner_text("body")

        # A second summary, stopped part-way: what arrived stays, marked stopped.
        ollama_double.models["llama3.2:latest"] = ModelScript(
            chunks=_words(HOSTILE) * 20, chunk_delay_s=0.05
        )
        page.locator(".st-key-sum_go button").click()
        page.locator(".st-key-sum_stop button").wait_for(timeout=30_000)
        page.get_by_text("Host 10.0.0.5 runs", exact=False).first.wait_for(timeout=30_000)
        page.locator(".st-key-sum_stop button").click()
        page.get_by_text("Stopped — the text that had arrived is kept.").wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / "summarize-stopped.png"), full_page=True)
    assert ollama_double.wait_for(lambda d: any(e.how == "client_closed" for e in d.ends), 10)
    saved = SQLiteStore(db)
    try:
        statuses = sorted(s.status for s in saved.list_summaries())
    finally:
        saved.close()
    assert statuses == ["complete", "stopped"]


def test_the_page_says_what_the_model_is_doing_before_its_first_words_and_stop_ends_the_wait(
    tmp_path: Path, artifacts: Path, ollama_double: OllamaDouble
) -> None:
    """A model that sends nothing while it reads the prompt (not even headers): the page says
    so with the seconds counting up, and Stop ends the wait at once."""
    db = tmp_path / "b.db"
    store = SQLiteStore(db)
    store.save_report(sample_report())
    store.close()
    ollama_double.models["llama3.2:latest"] = ModelScript(
        answer="Too late.", first_token_delay_s=60, headers_with_first_token=True
    )
    env = {"SCANSCRIBE_DB": str(db), "OLLAMA_HOST": ollama_double.url, "SCANSCRIBE_STORE": "sqlite"}
    with (
        streamlit_server(env, artifacts / "browser-summarize-wait-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url + "/summarize", wait_until="domcontentloaded")
        page.locator(".st-key-sum_go button").wait_for(timeout=30_000)
        page.locator(".st-key-sum_go button").click()
        waiting = "Waiting for the first words: llama3.2:latest is reading the prompt"
        note = page.get_by_text(waiting)
        note.wait_for(timeout=30_000)
        first = int(note.inner_text().rsplit("·", 1)[1].split()[0])
        page.get_by_text(f"· {first + 2} s").wait_for(timeout=15_000)  # the seconds count up
        page.screenshot(path=str(artifacts / "summarize-waiting.png"), full_page=True)
        t0 = time.monotonic()
        page.locator(".st-key-sum_stop button").click()
        page.get_by_text("Stopped — the text that had arrived is kept.").wait_for(timeout=10_000)
        took = time.monotonic() - t0
        assert note.count() == 0
    assert took < 10, f"Stop took {took:.1f} s"
    saved = SQLiteStore(db)
    try:
        [summary] = saved.list_summaries()
    finally:
        saved.close()
    assert (summary.status, summary.text) == ("stopped", "")
