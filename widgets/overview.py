"""The Overview page's blocks: the current exposure (cached), its table, the trend chart."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

import ui
from scanner.diff import Coverage
from scanner.history import Exposure, current_exposure
from scanner.models import ReportSummary
from scanner.risk import port_risk

# How many of the newest reports the trend reads the port lists of (each is read once).
TREND_REPORTS = 200
TIME_FORMAT = "%Y-%m-%d %H:%M"


@st.cache_resource(max_entries=4, show_spinner="Working out what is exposed now…")
def load_exposure(store_key: str, reports: tuple[ReportSummary, ...]) -> Exposure:
    """The current exposure over these reports, computed once per list of reports."""
    return current_exposure(reports, ui.get_services().store.get_report)


@st.cache_resource(max_entries=2000, show_spinner=False)
def load_coverage(store_key: str, report_id: str) -> Coverage | None:
    """The ports one report's scan probed; a report never changes, so this is read once."""
    return Coverage.of(ui.get_services().store.get_report(report_id))


def exposure_rows(exposure: Exposure) -> pd.DataFrame:
    """The open ports now, worst first, each with the report whose scan last probed it."""
    rows = []
    for op in exposure.open_ports:
        risk = port_risk(op.port)
        rows.append(
            {
                "host": op.address,
                "port": op.port.label,
                "service": op.port.service,
                "risk": risk.level,
                "why": risk.reason,
                "seen in scan of": ui.when(op.scanned_at),
                "report": op.report_id,
                "_rank": risk.rank,
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=["host", "port", "service", "risk", "why", "seen in scan of", "report", "_rank"],
    )
    return frame.sort_values("_rank", ascending=False, kind="stable").drop(columns=["_rank"])


def trend_chart(trend: pd.DataFrame) -> alt.Chart:
    """One line per targets, profile and port list; times in 24-hour form."""
    # 24-hour labels; with seconds when the scans lie within the hour, so no two ticks read alike.
    span = trend["when"].max() - trend["when"].min()
    fmt = TIME_FORMAT if span >= pd.Timedelta(hours=1) else "%H:%M:%S"
    when = alt.X(
        "when:T",
        title=None,
        axis=alt.Axis(
            format=fmt, labelAngle=-30, labelOverlap=True, tickCount=min(trend["when"].nunique(), 8)
        ),
    )
    chart: alt.Chart = (
        alt.Chart(trend)
        .mark_line(point=True)
        .encode(
            x=when,
            y=alt.Y(
                "open ports:Q", scale=alt.Scale(zero=True, nice=True), axis=alt.Axis(format="d")
            ),
            color=alt.Color(
                "series:N",
                title=None,
                legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=600),
            ),
            tooltip=[
                alt.Tooltip("when:T", title="scanned", format=TIME_FORMAT),
                "targets:N",
                "profile:N",
                "ports:N",
                "open ports:Q",
                "hosts up:Q",
                "id:N",
            ],
        )
    )
    return chart
