"""The Overview page through AppTest: exposure from the newest scan of each port, one trend line per
targets, profile and port list, times in 24-hour form, open ports coloured by risk."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import ui
from config import PROJECT_ROOT as ROOT
from scanner.models import Host, Port, Report
from store.sqlite import SQLiteStore
from widgets.severity import COLORS

PAGE = str(ROOT / "pages" / "overview.py")
# An afternoon time: a 12-hour clock would show it as 03:45 PM.
AFTERNOON = dt.datetime(2026, 3, 14, 15, 45).timestamp()
SIX = (23, 443, 3306, 6379, 8080, 9200)
NAMES = {23: "telnet", 443: "https", 3306: "mysql", 6379: "redis", 8080: "http", 9200: "http"}


def scan(
    rid: str, hours: float, profile: str, services: str, open_ports: tuple[int, ...]
) -> Report:
    at = AFTERNOON + hours * 3600
    return Report(
        id=rid,
        targets=("10.0.0.5",),
        profile=profile,
        source="scan" if profile else f"import: {rid}.xml",
        started_at=at,
        created_at=at,
        hosts=(
            Host(
                "10.0.0.5",
                ports=tuple(Port(p, "tcp", "open", service=NAMES[p]) for p in open_ports),
            ),
        ),
        extra={"scaninfo": [{"protocol": "tcp", "services": services}]},
    )


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[SQLiteStore]:
    """The page pointed at a fresh database: a quick scan, a full scan, then a 2-port rescan."""
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    s = SQLiteStore(db_path)
    s.save_report(scan("quick1", 0, "quick", "21-23,80,443", (23,)))
    s.save_report(scan("full1", 1, "full-tcp", "1-65535", SIX))
    s.save_report(scan("two1", 2, "", "22,80", ()))
    ui._services.clear()
    yield s
    ui._services.clear()
    s.close()


def charts(at: AppTest) -> list[tuple[dict[str, Any], Any]]:
    import pyarrow as pa

    out = []
    for chart in at.get("vega_lite_chart"):
        frames = [
            pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets
        ]
        out.append((json.loads(chart.proto.spec), frames[0]))
    return out


def test_a_two_port_rescan_does_not_zero_what_a_full_scan_found(store: SQLiteStore) -> None:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Open ports now"] == "6"
    assert metrics["Hosts up now"] == "1"
    # The critical or high ports among them (redis; telnet, mysql) are counted apart.
    assert metrics["Critical / high"] == "3"
    [open_now] = [d for d in at.dataframe if "seen in scan of" in d.value.columns]
    assert set(open_now.value["report"]) == {"full1"}
    assert set(open_now.value["seen in scan of"]) == {"2026-03-14 16:45:00"}
    css = open_now.proto.arrow_data.styler.styles
    assert f"background-color: {COLORS['critical']}" in css


def test_the_trend_never_joins_scans_of_different_profiles_or_ports(store: SQLiteStore) -> None:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    [(spec, trend)] = [(s, f) for s, f in charts(at) if s.get("mark", {}).get("type") == "line"]
    lines = {s: list(g["open ports"]) for s, g in trend.groupby("series")}
    assert lines == {
        "10.0.0.5 · quick · tcp 21-23,80,443": [1],
        "10.0.0.5 · full-tcp · tcp 1-65535": [6],
        "10.0.0.5 · imported · tcp 22,80": [0],
    }
    # 24-hour times on the axis and in the tooltip, as in the tables.
    assert spec["encoding"]["x"]["axis"]["format"] == "%Y-%m-%d %H:%M"
    assert {"title": "scanned", "format": "%Y-%m-%d %H:%M"}.items() <= spec["encoding"]["tooltip"][
        0
    ].items()
    assert "2026-03-14 17:45:00" in [
        d.value["scanned"].iloc[0] for d in at.dataframe if "scanned" in d.value.columns
    ]


def test_open_ports_by_risk_are_bars_coloured_by_level(store: SQLiteStore) -> None:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    [(spec, levels)] = [(s, f) for s, f in charts(at) if "layer" in s]
    assert dict(zip(levels["risk"], levels["open ports"], strict=True))["critical"] >= 1
    assert sum(levels["open ports"]) == 6
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == COLORS
