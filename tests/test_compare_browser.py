"""Compare models in a real chromium: both columns grow at once, one is stopped, a winner kept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store.sqlite import SQLiteStore
from tests import compare_support as cs
from tests.browser import chromium_page, streamlit_server
from tests.ollama_double import ModelScript, OllamaDouble

pytestmark = pytest.mark.browser

# Markup a model might be tricked into writing: it must arrive as text, never as live elements.
HOSTILE = (
    "<script>window.pwned=1</script> [click](javascript:window.pwned=2) "
    "![beacon](http://127.0.0.9/beacon.png) <img src=http://127.0.0.9/x.png>"
)
ALPHA = HOSTILE + " " + cs.words(75, "a")


@pytest.fixture
def double() -> Iterator[OllamaDouble]:
    """Two models that stream steadily for a few seconds, at different speeds."""
    d = cs.double(
        alpha__latest=ModelScript(answer=ALPHA, chunk_delay_s=0.06),
        beta__latest=ModelScript(answer=cs.words(120, "b"), chunk_delay_s=0.08),
    )
    yield d
    d.stop()


def _choose(page: Any, model: str) -> None:
    box = page.locator(".st-key-cmp_models")
    box.locator("input").click()
    page.keyboard.type(model)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")


def _lengths(page: Any) -> tuple[int, int]:
    texts = [page.locator(f".st-key-cmp_live_{i}").inner_text() for i in (0, 1)]
    return len(texts[0]), len(texts[1])


def test_two_columns_grow_at_once_and_stop_alone(
    tmp_path: Path, artifacts: Path, double: OllamaDouble
) -> None:
    db = tmp_path / "b.db"
    store = SQLiteStore(db)
    store.save_report(cs.report())
    env = {"SCANSCRIBE_DB": str(db), "OLLAMA_HOST": double.url, "SCANSCRIBE_STORE": "sqlite"}
    with (
        streamlit_server(env, artifacts / "compare-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("link", name="Compare models").click()
        page.get_by_role("heading", name="Compare models").wait_for(timeout=30_000)
        page.locator(".st-key-cmp_models input").wait_for(timeout=30_000)
        _choose(page, "alpha:latest")
        _choose(page, "beta:latest")
        go = page.locator(".st-key-cmp_go button")
        deadline = time.monotonic() + 15
        while go.is_disabled() and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        go.click()

        page.locator(".st-key-cmp_live_1").wait_for(timeout=30_000)
        samples = [_lengths(page)]
        both_grew = 0
        deadline = time.monotonic() + 10
        while both_grew < 3 and time.monotonic() < deadline:
            page.wait_for_timeout(250)
            samples.append(_lengths(page))
            (a0, b0), (a1, b1) = samples[-2], samples[-1]
            if a1 > a0 and b1 > b0:
                both_grew += 1
                if both_grew == 1:
                    page.screenshot(path=str(artifacts / "compare-growing.png"), full_page=True)
        assert both_grew >= 3, f"the columns did not grow together: {samples}"

        page.locator(".st-key-cmp_stop_1 button").click()
        # The click reruns the page, which goes on showing the other answer as it grows.
        page.get_by_text("stopped · ").wait_for(timeout=10_000)
        at_stop = _lengths(page)[0]
        deadline = time.monotonic() + 10
        while _lengths(page)[0] <= at_stop and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert _lengths(page)[0] > at_stop, "the other column stopped growing"
        page.locator(".st-key-cmp_answer_1").wait_for(timeout=30_000)
        page.get_by_text("stopped — the text that had arrived is kept").wait_for(timeout=10_000)
        page.screenshot(path=str(artifacts / "compare-done.png"), full_page=True)
        speed = page.get_by_text("Tokens per second — higher is faster")
        speed.scroll_into_view_if_needed()
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=10_000)
        page.screenshot(path=str(artifacts / "compare-charts.png"), full_page=True)

        (comp,) = store.list_comparisons()
        by_model = {r["model"]: r for r in comp.results}
        assert by_model["alpha:latest"]["status"] == "complete"
        assert by_model["alpha:latest"]["text"] == ALPHA
        # The hostile markup is on screen as characters, and the DOM holds no live element.
        page.get_by_text("window.pwned=1", exact=False).first.wait_for(timeout=10_000)
        assert page.locator("a[href^='javascript']").count() == 0
        assert page.locator("img[src*='127.0.0.9']").count() == 0
        assert page.evaluate("window.pwned") is None
        assert by_model["beta:latest"]["status"] == "stopped"
        assert 0 < len(by_model["beta:latest"]["text"]) < len(cs.words(120, "b"))

        page.locator(".st-key-cmp_winner").get_by_text("alpha:latest").click()
        save = page.locator(".st-key-cmp_save button")
        deadline = time.monotonic() + 15
        while save.is_disabled() and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        save.click()
        page.get_by_text("Saved: alpha:latest").wait_for(timeout=15_000)
        page.screenshot(path=str(artifacts / "compare-verdict.png"), full_page=True)
        assert store.get_comparison(comp.id).winner == "alpha:latest"
    store.close()
