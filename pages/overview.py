"""Overview: what is exposed now, how it moved, the latest reports and summaries."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from scanner.history import (
    exposure_trend,
    latest_per_target_set,
    target_set,
)
from scanner.models import ReportSummary
from scanner.risk import LEVELS
from store import StoreError
from widgets import severity
from widgets.overview import (
    TREND_REPORTS,
    exposure_rows,
    load_coverage,
    load_exposure,
    trend_chart,
)

ui.page_guard()
st.title("ScanScribe")
st.caption("Scan what you are allowed to scan, read what was found, and brief people on it.")

svc = ui.get_services()
store_key = svc.store.describe()
try:
    reports = svc.store.list_reports()
    summaries = svc.store.list_summaries()
    current = latest_per_target_set(reports)
    exposure = load_exposure(store_key, tuple(reports))
except StoreError as exc:
    st.error(ui.escape_md_keep_code(f"The store could not be read: {exc}"))
    st.stop()

now = (
    "Now: hosts up in the newest scan of each set of targets; each port as the newest scan "
    "that probed it found it, so a narrow rescan does not hide what a full scan found."
)
open_now = exposure_rows(exposure)
worst = int(open_now["risk"].isin(("critical", "high")).sum())
# A wrapping row: four across on a wide screen, two by two on a narrow one.
metrics = st.container(horizontal=True, gap="small", key="overview_metrics")
metrics.metric("Reports", len(reports), width=150, border=True)
metrics.metric("Hosts up now", exposure.hosts_up, help=now, width=150, border=True)
metrics.metric("Open ports now", len(open_now), help=now, width=150, border=True)
metrics.metric(
    "Critical / high",
    worst,
    help="Open ports now at critical or high risk.",
    width=150,
    border=True,
)
metrics.metric("Summaries", len(summaries), width=150, border=True)

if not reports:
    with st.container(border=True, key="first_run"):
        st.subheader("Start here")
        st.markdown(
            "1. Open **System status** and check that nmap and Ollama are ready.\n"
            "2. Open **Scan**, enter a target inside your scope "
            f"(`{', '.join(str(n) for n in svc.config.scope)}`), pick a profile and press Scan.\n"
            "3. Or open **Reports** and import an nmap XML file you already have.\n"
            "4. On a report, press **Summarize this** for an executive summary from your local "
            "model."
        )
else:
    st.subheader("Exposed now")
    st.caption(
        f"From {exposure.reports_read} report(s) of {len(current)} set(s) of targets; "
        "each port as the newest scan that probed it found it."
    )
    if open_now.empty:
        st.caption("No open ports in the newest scans.")
    else:
        by_level = open_now["risk"].value_counts()
        levels = pd.DataFrame(
            [(lvl, lvl, int(by_level[lvl])) for lvl in LEVELS if lvl in by_level],
            columns=["risk", "level", "open ports"],
        )
        severity.bars_or_note(
            severity.with_rank(levels),
            "risk",
            "open ports",
            "open ports",
            "overview_levels",
            LEVELS,
        )
        with st.expander(f"The {len(open_now)} open port(s), worst first"):
            st.dataframe(
                severity.risk_badges(open_now.head(500)),
                hide_index=True,
                key="open_now",
                column_config={"why": st.column_config.TextColumn("why", width="large")},
            )

    st.subheader("Latest reports")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "scanned": ui.when(r.scanned_at),
                    "targets": " ".join(r.targets)[:120],
                    "profile / source": r.profile or r.source,
                    "hosts up": r.hosts_up,
                    "open ports": r.open_ports,
                    "summaries": r.summaries,
                    "id": r.id,
                }
                for r in reports[:10]
            ]
        ),
        hide_index=True,
        key="latest_reports",
        on_select="rerun",
        selection_mode="single-row",
    )
    st.caption("Select a row to open that report.")
    opened = st.session_state["latest_reports"].selection.rows
    if opened:  # to the Reports page, that report picked, by its own address
        st.switch_page(ui.PAGE_DIR / "reports.py", query_params={"report": reports[opened[0]].id})
    counts: dict[str, int] = {}
    for r in reports:
        counts[target_set(r)] = counts.get(target_set(r), 0) + 1
    again: list[ReportSummary] = [r for r in reports if counts[target_set(r)] > 1][:TREND_REPORTS]
    if again:
        st.subheader("Open ports over time")
        st.caption(
            "One line per set of targets scanned with one profile over one port list, so a "
            "quick scan, a full scan and a two-port rescan are never joined; each point a report."
        )
        try:
            coverage = {r.id: load_coverage(store_key, r.id) for r in again}
        except StoreError as exc:
            st.error(ui.escape_md_keep_code(f"The reports could not be read: {exc}"))
            st.stop()
        trend = exposure_trend(again, coverage=coverage)
        st.altair_chart(trend_chart(trend), width="stretch", key="overview_trend")

if summaries:
    st.subheader("Latest summaries")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": ui.when(s.created_at),
                    "report": s.report_id,
                    "model": s.model,
                    "audience": s.audience,
                    "status": s.status,
                }
                for s in summaries[:10]
            ]
        ),
        hide_index=True,
        key="latest_summaries",
    )
