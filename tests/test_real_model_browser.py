"""The Summarize page in a real chromium against a real model (Gemma 3 270M in llama.cpp behind
Ollama's API; a test adapter, not Ollama): the summary of a real report grows on screen in many
steps, its metrics are the model's own, and Stop mid-generation keeps the text that had arrived.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.importer import import_bytes
from store.records import Summary
from store.sqlite import SQLiteStore
from tests.browser import chromium_page, streamlit_server, watch_text
from tests.fixtures_real_model import CORPUS, RealModel, serve

pytestmark = [pytest.mark.real_model, pytest.mark.browser]

REPORT_XML = CORPUS / "nickdkelly_homesec__nmap_scan.xml"  # 4 hosts, 12 open ports
# Long enough answers (about 5 to 10 s at this machine's speed) to watch them grow and to press
# Stop while the model is still generating.
NUM_PREDICT = 160


@pytest.fixture(scope="module")
def long_answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealModel]:
    """An adapter of its own whose answers run to NUM_PREDICT tokens."""
    with serve(tmp_path_factory.mktemp("real-model-long") / "stderr.log", NUM_PREDICT) as model:
        yield model


def _metrics(page: Any) -> dict[str, str]:
    """The metric widgets on the page, label to value as drawn."""
    shown: dict[str, str] = {}
    for box in page.locator('[data-testid="stMetric"]').all():
        label, _, value = box.inner_text().partition("\n")
        shown[label.strip()] = value.strip()
    return shown


def _summaries(db: Path) -> list[Summary]:
    store = SQLiteStore(db)
    try:
        return sorted(store.list_summaries(), key=lambda s: s.created_at)
    finally:
        store.close()


def test_a_real_summary_grows_on_screen_and_stop_keeps_what_arrived(
    tmp_path: Path, artifacts: Path, long_answers: RealModel
) -> None:
    db = tmp_path / "b.db"
    store = SQLiteStore(db)
    try:
        report = import_bytes(store, REPORT_XML.read_bytes(), filename=REPORT_XML.name)
    finally:
        store.close()
    env = {
        "SCANSCRIBE_DB": str(db),
        "SCANSCRIBE_STORE": "sqlite",
        "OLLAMA_HOST": long_answers.url,
        "SCANSCRIBE_OLLAMA_TIMEOUT": "120",
    }
    with (
        streamlit_server(env, artifacts / "browser-real-model-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(f"{url}/summarize?report={report.id}", wait_until="domcontentloaded")
        go = page.locator(".st-key-sum_go button")
        go.wait_for(timeout=60_000)
        go.click()
        current = page.locator(".st-key-sum_current")
        current.wait_for(timeout=60_000)

        def midway(lengths: list[int]) -> None:
            if len(set(lengths)) == 6 and lengths[-1] != lengths[-2]:
                page.screenshot(path=str(artifacts / "real-model-streaming.png"), full_page=True)

        deadline = time.monotonic() + 240
        lengths = watch_text(page, current, "Complete.", 180, midway)
        assert "Complete." in current.inner_text(), current.inner_text()
        current.locator('[data-testid="stMetric"]').first.wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / "real-model-complete.png"), full_page=True)
        growth = sorted(set(lengths))
        assert len(growth) >= 10, f"the text did not visibly grow as the model wrote: {growth}"

        (done,) = _summaries(db)
        assert done.status == "complete" and done.model == long_answers.model
        m = done.metrics
        assert m["prompt_tokens"] > 100 and 0 < m["output_tokens"] <= NUM_PREDICT
        assert 0 < m["tokens_per_s"] < 1500 and m["chunks"] >= 10
        # The page shows the model's own counts, as saved.
        shown = _metrics(page)
        assert shown["Prompt tokens"] == str(m["prompt_tokens"])
        assert shown["Output tokens"] == str(m["output_tokens"])
        assert shown["Tokens/s"] == f"{m['tokens_per_s']:.1f}"
        # The answer on screen is the saved one (drawn as text: compare its words).
        words = re.findall(r"[A-Za-z]{4,}", done.text)[:8]
        body = current.inner_text()
        assert words and all(w in body for w in words), (words, body[:500])

        # A second summary, stopped while the model is still generating.
        go.click()
        stop = page.locator(".st-key-sum_stop button")
        stop.wait_for(timeout=60_000)
        # The first words of the new answer, as saved when they arrive (the page may still
        # show the previous answer's elements until it redraws them).
        while time.monotonic() < deadline:
            latest = _summaries(db)[-1]
            if latest.id != done.id and latest.text.strip():
                break
            page.wait_for_timeout(50)
        stop.click()
        page.get_by_text("Stopped — the text that had arrived is kept.").wait_for(timeout=60_000)
        page.screenshot(path=str(artifacts / "real-model-stopped.png"), full_page=True)
        on_screen = current.inner_text()

    first, stopped = _summaries(db)
    assert first.id == done.id and stopped.status == "stopped"
    assert stopped.text.strip(), "nothing of the stopped answer was kept"
    # Stopped before the model finished: no final counts, fewer pieces than a whole answer.
    assert stopped.metrics["output_tokens"] is None
    assert 0 < stopped.metrics["chunks"] < NUM_PREDICT
    kept = re.findall(r"[A-Za-z]{4,}", stopped.text)[:5]
    assert all(w in on_screen for w in kept), (kept, on_screen[:500])
