"""Severity at a glance in a real chromium: the risk bars, the host × port grid and the risk cells
of the hosts table are drawn in their level's colour, and down hosts appear only when asked."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scanner.models import Host, Port, Report
from store.sqlite import SQLiteStore
from tests.browser import chromium_page, offline_env, streamlit_server
from widgets.severity import COLORS

pytestmark = pytest.mark.browser

SERVICES = ((6379, "redis"), (23, "telnet"), (3306, "mysql"), (80, "http"), (443, "https"))


def report() -> Report:
    """Twelve hosts up with a mix of ports from critical to info, and two hosts down."""
    hosts = [
        Host(
            f"10.20.0.{i}",
            ports=tuple(
                Port(p, "tcp", "open", service=name)
                for j, (p, name) in enumerate(SERVICES)
                if (i + j) % 3
            ),
        )
        for i in range(1, 13)
    ]
    hosts += [Host("10.20.0.50", status="down"), Host("10.20.0.51", status="down")]
    return Report(
        id="rep-grid",
        targets=("10.20.0.0/24",),
        profile="quick",
        created_at=1.7e9,
        hosts=tuple(hosts),
    )


def colours(png: bytes) -> set[str]:
    """The colours of a screenshot, as ``#rrggbb``."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    return {"#{:02x}{:02x}{:02x}".format(*c) for _, c in img.getcolors(maxcolors=1 << 20) or []}


def shows(page: Any, selector: str, *levels: str) -> set[str]:
    """Which of ``levels`` are drawn in their own colour inside the element at ``selector``."""
    box = page.locator(selector).first
    box.scroll_into_view_if_needed()
    seen = colours(box.screenshot())
    return {lvl for lvl in levels if COLORS[lvl] in seen}


def test_levels_are_drawn_in_their_colours(tmp_path: Path, artifacts: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    store.save_report(report())
    store.close()
    with (
        streamlit_server(offline_env(db), artifacts / "severity-streamlit.log") as url,
        chromium_page(viewport=(1440, 1400)) as page,
    ):
        page.goto(f"{url}/reports?report=rep-grid", wait_until="domcontentloaded")
        page.locator("[data-testid='stVegaLiteChart']").nth(3).wait_for(timeout=60_000)
        page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=30_000)
        page.get_by_text("12 of 14 hosts").wait_for(timeout=30_000)
        every = ("critical", "high", "low", "info")
        assert shows(page, ".st-key-chart_1", *every) == set(every)  # hosts by risk
        assert shows(page, ".st-key-chart_0", *every) == set(every)  # open ports by service
        grid = page.locator("[data-testid='stExpander']").filter(has_text="Host × port grid")
        grid.scroll_into_view_if_needed()
        grid_seen = colours(grid.screenshot())
        assert {COLORS[lvl] for lvl in every} <= grid_seen
        grid.screenshot(path=str(artifacts / "severity-grid.png"))
        # The tables after History: hosts, then ports.
        hosts = page.locator("[data-testid='stDataFrame']").nth(1)
        hosts.scroll_into_view_if_needed()
        assert COLORS["critical"] in colours(hosts.screenshot())  # the risk badge
        page.locator(".st-key-chart_0").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "severity-charts.png"))

        page.locator(".st-key-filter_down label").click()
        page.get_by_text("14 of 14 hosts").wait_for(timeout=30_000)
