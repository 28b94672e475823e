"""Narrow screens in a real chromium: at 800 and 1440 px wide, Overview, Reports and Compare fit
the window (nothing scrolls sideways), metrics do not overlap or cut their labels, filters and
the Compare answer columns keep a readable width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanner.importer import import_bytes
from store.sqlite import SQLiteStore
from tests import compare_support
from tests.browser import chromium_page, offline_env, streamlit_server
from tests.test_compare_scores import COMP

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).parent / "fixtures"
WIDTHS = (800, 1440)
# Narrowest width at which a filter or an answer column is still readable.
MIN_FILTER_PX = 150
MIN_ANSWER_PX = 180

MEASURE = """(sel) => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width,
            cut: e.scrollWidth > e.clientWidth + 1, text: e.innerText.slice(0, 40)}; };
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    // Hidden elements (another tab's) have no box; only what is on screen is measured.
    items: [...document.querySelectorAll(sel)].filter((e) => e.getClientRects().length).map(box),
  };
}"""


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        min(a["right"], b["right"]) - max(a["left"], b["left"]) > 1
        and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 1
    )


def check_layout(page: Any, selector: str, min_width: float, what: str) -> list[dict[str, Any]]:
    """No sideways scrolling; ``selector`` boxes neither overlap nor fall under ``min_width``."""
    got = page.evaluate(MEASURE, selector)
    width = page.viewport_size["width"]
    assert got["overflow"] <= 0, f"{what} at {width} px scrolls sideways by {got['overflow']} px"
    items = got["items"]
    assert items, f"no {selector} on {what}"
    for i, a in enumerate(items):
        assert a["right"] <= width + 1, f"{what} at {width} px: {a['text']!r} is cut at the edge"
        assert a["width"] >= min_width, f"{what} at {width} px: {a['text']!r} is {a['width']} px"
        for b in items[i + 1 :]:
            assert not overlaps(a, b), f"{what} at {width} px: {a['text']!r} overlaps {b['text']!r}"
    return items


def shoot(page: Any, path: Path) -> None:
    """A screenshot of the whole page: the window made as tall as the main area for a moment."""
    size = page.viewport_size
    tall = page.evaluate("document.querySelector('[data-testid=\\'stMain\\']').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(tall, 600), 8000)})
    settle(page)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def settle(page: Any) -> None:
    """Wait until the script run ended (the running indicator is gone)."""
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=30_000)


def test_pages_fit_at_800_and_1440_px(tmp_path: Path, artifacts: Path) -> None:
    db = tmp_path / "n.db"
    store = SQLiteStore(db)
    import_bytes(store, (FIXTURES / "netns_before.xml").read_bytes(), filename="before.xml")
    after = import_bytes(store, (FIXTURES / "netns_after.xml").read_bytes(), filename="after.xml")
    store.save_report(compare_support.report())
    store.save_comparison(COMP)
    store.close()
    with (
        streamlit_server(offline_env(db), artifacts / "narrow-streamlit.log") as url,
        chromium_page(viewport=(WIDTHS[0], 1000)) as page,
    ):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1000})

            page.goto(url, wait_until="domcontentloaded")
            page.locator("[data-testid='stMetric']").first.wait_for(timeout=60_000)
            page.get_by_text("Open ports over time").wait_for(timeout=30_000)
            # Both charts drawn: open ports by risk, and the trend.
            page.locator("[data-testid='stVegaLiteChart']").nth(1).wait_for(timeout=30_000)
            settle(page)
            metrics = check_layout(page, "[data-testid='stMetric']", 100, "Overview metrics")
            assert not any(m["cut"] for m in metrics), metrics
            labels = page.evaluate(MEASURE, "[data-testid='stMetricLabel'] p")["items"]
            assert not any(m["cut"] for m in labels), f"metric labels cut at {width} px: {labels}"
            shoot(page, artifacts / f"narrow-overview-{width}.png")

            page.goto(f"{url}/reports?report={after.id}", wait_until="domcontentloaded")
            page.get_by_text("Script output").first.wait_for(timeout=60_000)
            page.locator(".st-key-filter_risk [data-testid='stMultiSelect']").wait_for(
                timeout=30_000
            )
            page.locator("[data-testid='stVegaLiteChart']").nth(3).wait_for(timeout=30_000)
            settle(page)
            check_layout(page, "[data-testid='stMetric']", 100, "Reports metrics")
            check_layout(
                page,
                ".st-key-report_filters [data-testid='stTextInput'], "
                ".st-key-report_filters [data-testid='stMultiSelect']",
                MIN_FILTER_PX,
                "Reports filters",
            )
            shoot(page, artifacts / f"narrow-reports-{width}.png")

            page.goto(f"{url}/compare?comparison={COMP.id}", wait_until="domcontentloaded")
            page.locator(".st-key-cmp_answer_3").wait_for(timeout=60_000)
            page.get_by_text("Leaderboard").wait_for(timeout=30_000)
            settle(page)
            check_layout(page, "[class*='st-key-cmp_answer_']", MIN_ANSWER_PX, "Compare answers")
            shoot(page, artifacts / f"narrow-compare-{width}.png")
