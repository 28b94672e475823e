"""Severity at a glance on the Reports page: coloured risk cells and bars, labels, a host × port
grid, charts that follow the filters, down hosts left out of tables and downloads until shown."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from streamlit.testing.v1 import AppTest

from scanner import export
from store.sqlite import SQLiteStore
from tests import test_reports_page as rp
from widgets.severity import COLORS

# The Reports page's own fixtures: a database with two imported scans, and the download hook.
app_env, two_scans, deferred = rp.app_env, rp.two_scans, rp.deferred
page, download = rp.page, rp.download


def charts(at: AppTest) -> list[tuple[dict[str, Any], list[pd.DataFrame]]]:
    """Every chart on the page: its Vega-Lite spec and its datasets, as the browser gets them."""
    import pyarrow as pa

    def walk(node: Any) -> Iterator[Any]:
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return [
        (
            json.loads(node.proto.spec),
            [pa.ipc.open_stream(ds.data.data).read_all().to_pandas() for ds in node.proto.datasets],
        )
        for node in walk(at._tree)
        if node.type == "vega_lite_chart"
    ]


def bars(at: AppTest, category: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """The bar chart of ``category`` (its spec and its bars' data)."""
    [(spec, frames)] = [
        (s, f)
        for s, f in charts(at)
        if "layer" in s and s["layer"][0]["encoding"]["y"]["field"] == category
    ]
    return spec, frames[0]


def grid(at: AppTest) -> pd.DataFrame:
    """The cells of the host × port grid."""
    [frame] = [f[0] for s, f in charts(at) if s.get("mark", {}).get("type") == "rect"]
    return frame


def counts(frame: pd.DataFrame, category: str, count: str) -> dict[tuple[str, str], int]:
    return {
        (str(c), str(lvl)): int(n)
        for c, lvl, n in zip(frame[category], frame["level"], frame[count], strict=True)
    }


def styles(at: AppTest, column: str) -> str:
    """The CSS of the table that has ``column``."""
    [css] = [d.proto.arrow_data.styler.styles for d in at.dataframe if column in d.value.columns]
    return css


def test_bars_are_coloured_by_severity_and_labelled(two_scans: tuple[str, str]) -> None:
    at = page()
    assert not at.exception, at.exception
    spec, services = bars(at, "service")
    # http is stacked: one critical port (18080) and one low (80), total 2 on its label.
    assert counts(services, "service", "open ports") == {
        ("ftp", "critical"): 1,
        ("http", "critical"): 1,
        ("http", "low"): 1,
        ("redis", "critical"): 1,
        ("smtp", "low"): 1,
        ("ssh", "low"): 1,
    }
    bar_layer, labels = spec["layer"]
    scale = bar_layer["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == COLORS
    # Every bar carries its number as text.
    assert labels["mark"]["type"] == "text" and labels["encoding"]["text"]["field"] == "open ports"
    _, risk = bars(at, "risk")
    # The host nmap found down is not counted (it is hidden by default).
    assert counts(risk, "risk", "hosts") == {("critical", "critical"): 1, ("info", "info"): 1}
    _, ports = bars(at, "port")
    assert set(ports["port"]) == {
        "80/tcp",
        "6379/tcp",
        "18021/tcp",
        "18022/tcp",
        "18025/tcp",
        "18080/tcp",
    }


def test_charts_and_the_grid_follow_the_filters(two_scans: tuple[str, str]) -> None:
    at = page()
    cells = grid(at)
    assert len(cells) == 6  # one cell per open port
    assert dict(zip(cells["port"], cells["level"], strict=False))["6379/tcp"] == "critical"
    at.multiselect(key="filter_risk").select("critical").run()
    _, services = bars(at, "service")
    assert set(services["level"]) == {"critical"}
    cells = grid(at)
    assert set(cells["level"]) == {"critical"} and len(cells) == 3


def test_no_open_ports_is_said_in_words_not_drawn_as_an_empty_axis(
    two_scans: tuple[str, str],
) -> None:
    at = page()
    at.text_input(key="filter_port").input("9").run()
    # Only the hosts-by-risk bars are left (the port filter narrows ports, not hosts).
    assert [s["layer"][0]["encoding"]["y"]["field"] for s, _ in charts(at)] == ["risk"]
    assert sum("No open ports in this selection." in c.value for c in at.caption) == 3


def test_risk_cells_are_coloured_by_level(two_scans: tuple[str, str]) -> None:
    at = page()
    hosts_css, ports_css = styles(at, "os"), styles(at, "reason")
    assert f"background-color: {COLORS['critical']}" in hosts_css
    assert f"background-color: {COLORS['info']}" in hosts_css
    assert f"background-color: {COLORS['low']}" in ports_css


def test_down_hosts_leave_downloads_until_shown(
    two_scans: tuple[str, str], app_env: SQLiteStore, deferred: dict[str, Callable[[], Any]]
) -> None:
    _, after = two_scans
    at = page()
    assert "10.231.7.4" not in download(at, "dl_hosts_csv", deferred)
    assert "10.231.7.4" not in download(at, "dl_md", deferred)
    at.toggle(key="filter_down").set_value(True).run()
    assert "10.231.7.4" in download(at, "dl_hosts_csv", deferred)
    # The export functions themselves keep every host unless asked.
    report = app_env.get_report(after)
    assert "10.231.7.4" in export.hosts_csv(report)
    assert "10.231.7.4" not in export.hosts_csv(export.without_down_hosts(report))
