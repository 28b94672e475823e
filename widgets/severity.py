"""Severity at a glance: one colour per risk level for table badges, bars and the host × port grid.

Cells are coloured through pandas' Styler and charts through Altair, so scan text only ever
reaches the browser as data, never as HTML.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import altair as alt
import pandas as pd
import streamlit as st

from scanner.risk import LEVELS

# Red, orange, amber, blue, grey: critical to info, readable with white or dark text on top.
COLORS = {
    "critical": "#b91c1c",
    "high": "#ea580c",
    "medium": "#ca8a04",
    "low": "#2563eb",
    "info": "#9ca3af",
}
TEXT_ON = {"critical": "#ffffff", "high": "#ffffff", "medium": "#1f2937", "low": "#ffffff"}
# Largest grid drawn cell by cell; beyond it the cells are too small to read or hover.
GRID_MAX_HOSTS = 300
GRID_MAX_PORTS = 40
NO_OPEN_PORTS = "No open ports in this selection."
# One chart's width in a row of charts: three across a wide screen, one a line on a narrow one.
CHART_PX = 300
# Bar labels in a grey that reads on the light and the dark theme alike.
LABEL_COLOR = "#8b95a5"


def badge_css(level: object) -> str:
    """The CSS of one risk cell: its level's colour as the background, bold text on top."""
    name = str(level)
    if name not in COLORS:
        return ""
    return (
        f"background-color: {COLORS[name]}; color: {TEXT_ON.get(name, '#111827')}; font-weight: 600"
    )


def risk_badges(
    frame: pd.DataFrame, columns: Sequence[str] = ("risk",)
) -> pd.io.formats.style.Styler:
    """``frame`` with its risk column(s) coloured by level and missing values shown as a dash."""
    present: list[Hashable] = [c for c in columns if c in frame.columns]
    styler = frame.style.format(na_rep="—")
    return styler.map(badge_css, subset=present) if present else styler


def level_scale() -> alt.Scale:
    """The colour scale from risk level to colour, critical first."""
    return alt.Scale(domain=list(LEVELS), range=[COLORS[lvl] for lvl in LEVELS])


def severity_bars(
    frame: pd.DataFrame, category: str, count: str, title: str, order: Sequence[str] | None = None
) -> alt.LayerChart:
    """Horizontal bars of ``count`` per ``category``, stacked and coloured by ``level``, totals on
    every bar; largest first unless ``order`` fixes the order.

    ``frame`` has the columns ``category``, ``level`` and ``count``.
    """
    sort: list[str] | str = list(order) if order is not None else "-x"
    totals = frame.groupby(category, as_index=False, observed=True, sort=False)[count].sum()
    # Room after the longest bar for its label.
    scale = alt.Scale(domain=[0, float(totals[count].max()) * 1.15 or 1], nice=False)
    axis = alt.Axis(tickMinStep=1, format="d")
    y = alt.Y(f"{category}:N", sort=sort, title=None, axis=alt.Axis(labelLimit=160))
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"sum({count}):Q", title=title, axis=axis, scale=scale),
            y=y,
            color=alt.Color(
                "level:N",
                scale=level_scale(),
                legend=alt.Legend(orient="bottom", title=None, columns=3),
            ),
            order=alt.Order("rank:Q", sort="descending"),
            tooltip=[f"{category}:N", "level:N", f"{count}:Q"],
        )
    )
    labels = (
        alt.Chart(totals)
        .mark_text(align="left", dx=3, fontWeight="bold", color=LABEL_COLOR)
        .encode(
            x=alt.X(f"{count}:Q", axis=axis, scale=scale),
            y=y,
            text=alt.Text(f"{count}:Q", format="d"),
        )
    )
    chart: alt.LayerChart = (bars + labels).properties(height=alt.Step(22))
    return chart


def bars_or_note(
    chart_data: pd.DataFrame,
    category: str,
    count: str,
    title: str,
    key: str,
    order: Sequence[str] | None = None,
) -> None:
    """Draw :func:`severity_bars`, or say there is nothing to draw instead of an empty axis."""
    if chart_data.empty or not chart_data[count].sum():
        st.caption(NO_OPEN_PORTS)
        return
    st.altair_chart(
        severity_bars(chart_data, category, count, title, order), width="stretch", key=key
    )


def with_rank(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``rank`` column (critical highest) for stacking levels in order."""
    ranks = {lvl: len(LEVELS) - i for i, lvl in enumerate(LEVELS)}
    return frame.assign(rank=frame["level"].map(ranks).astype("int64"))


def heat_map(ports: pd.DataFrame, key: str) -> None:
    """A host × port grid of the open ports in ``ports``, each cell coloured by its risk level.

    ``ports`` has ``address``, ``port``, ``protocol``, ``risk`` and ``risk_rank`` columns. Drawn
    for up to :data:`GRID_MAX_HOSTS` hosts, over the :data:`GRID_MAX_PORTS` most common ports.
    """
    if ports.empty:
        st.caption(NO_OPEN_PORTS)
        return
    cells = pd.DataFrame(
        {
            "host": ports["address"].astype(str),
            "port": ports["port"].astype(str) + "/" + ports["protocol"].astype(str),
            "level": ports["risk"].astype(str),
            "rank": ports["risk_rank"].astype("int64"),
            "service": ports["service"].astype(str) if "service" in ports else "",
        }
    )
    hosts = cells["host"].nunique()
    if hosts > GRID_MAX_HOSTS:
        st.caption(
            f"{hosts} hosts have open ports here: too many for a grid. Filter by host, port or "
            f"risk to {GRID_MAX_HOSTS} hosts or fewer to see it."
        )
        return
    common = cells["port"].value_counts()
    kept = list(common.index[:GRID_MAX_PORTS])
    if len(common) > GRID_MAX_PORTS:
        st.caption(f"The {GRID_MAX_PORTS} most common of {len(common)} open ports are shown.")
    cells = cells[cells["port"].isin(kept)]
    port_order = sorted(kept, key=lambda p: (p.split("/")[1], int(p.split("/")[0])))
    # Worst hosts on top; within a level, in the scan's own order (10.0.0.9 before 10.0.0.10).
    host_order = cells.sort_values("rank", ascending=False, kind="stable")["host"].drop_duplicates()
    chart = (
        alt.Chart(cells)
        .mark_rect(cornerRadius=2)
        .encode(
            x=alt.X(
                "port:N",
                sort=port_order,
                title=None,
                axis=alt.Axis(labelAngle=-45),
                scale=alt.Scale(paddingInner=0.1),
            ),
            y=alt.Y(
                "host:N",
                sort=list(host_order),
                title=None,
                axis=alt.Axis(labelLimit=160),
                scale=alt.Scale(paddingInner=0.1),
            ),
            color=alt.Color(
                "level:N", scale=level_scale(), legend=alt.Legend(orient="bottom", title=None)
            ),
            tooltip=["host:N", "port:N", "service:N", "level:N"],
        )
        .properties(height=alt.Step(22))
    )
    st.altair_chart(chart, width="stretch", key=key)


# -- chart data, from the filtered tables ----------------------------------------------------------
def _open(ports: pd.DataFrame) -> pd.DataFrame:
    return ports[ports["state"].astype(str) == "open"]


def _counted(frame: pd.DataFrame, category: str, count: str, top: int) -> pd.DataFrame:
    """Rows per ``category`` and ``level`` counted into ``count``, the ``top`` largest kept."""
    if frame.empty:
        return pd.DataFrame(columns=[category, "level", count, "rank"])
    grouped = frame.groupby([category, "level"], observed=True).size().reset_index(name=count)
    grouped = grouped[grouped[count] > 0]
    totals = grouped.groupby(category, observed=True)[count].sum()
    keep = totals.sort_values(ascending=False, kind="stable").index[:top]
    return with_rank(grouped[grouped[category].isin(keep)].reset_index(drop=True))


def by_service(ports: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """Open ports per service name and risk level, the ``top`` services with most open ports."""
    op = _open(ports)
    frame = pd.DataFrame(
        {
            "service": op["service"].astype(str).replace("", "(unidentified)"),
            "level": op["risk"].astype(str),
        }
    )
    return _counted(frame, "service", "open ports", top)


def by_port(ports: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """Hosts per open port and risk level, the ``top`` ports open on most hosts."""
    op = _open(ports)
    frame = pd.DataFrame(
        {
            "port": op["port"].astype(str) + "/" + op["protocol"].astype(str),
            "level": op["risk"].astype(str),
        }
    )
    return _counted(frame, "port", "hosts", top)


def hosts_by_level(hosts: pd.DataFrame) -> pd.DataFrame:
    """Hosts per risk level, every level present with a count above zero, critical first."""
    counts = hosts["risk"].astype(str).value_counts()
    rows = [(lvl, lvl, int(counts.get(lvl, 0))) for lvl in LEVELS if counts.get(lvl, 0)]
    return with_rank(pd.DataFrame(rows, columns=["risk", "level", "hosts"]))
