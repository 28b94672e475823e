"""Reports: history, one report (hosts, ports, risk, scripts, charts), diff, import and export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from store.base import NotFound, StoreError
from widgets import report_tabs

ui.page_guard()
svc = ui.get_services()
store_key = svc.store.describe()
st.title("Reports")

history = ui.last_good("reports", svc.store.list_reports, "the report list")
history = report_tabs.import_expander(svc.store, history)

if not history:
    st.info("No reports yet. Run a scan on the Scan page, or import an nmap XML file above.")
    st.stop()

# -- history -----------------------------------------------------------------------------------
st.subheader("History")
h1, h2 = st.columns([3, 1])
search = h1.text_input(
    "Search reports", key="report_search", placeholder="id, target, profile or file name"
)
kind = h2.selectbox("Show", ("all reports", "scans", "imports", "incomplete"), key="report_kind")
needle = search.strip().lower()
rows = [
    r
    for r in history
    if (not needle or needle in " ".join((r.id, r.profile, r.source, *r.targets)).lower())
    and (
        kind == "all reports"
        or (kind == "scans" and r.source == "scan")
        or (kind == "imports" and r.source.startswith("import"))
        or (kind == "incomplete" and not r.complete)
    )
]
st.dataframe(
    pd.DataFrame(
        [
            {
                "scanned": ui.when(r.scanned_at),
                "imported": ui.when(r.created_at) if r.source != "scan" else "",
                "targets": " ".join(r.targets)[:200],
                "profile / source": r.profile or r.source,
                "hosts up": r.hosts_up,
                "open ports": r.open_ports,
                "summaries": r.summaries,
                "complete": r.complete,
                "id": r.id,
            }
            for r in rows[:500]
        ],
        columns=[
            "scanned",
            "imported",
            "targets",
            "profile / source",
            "hosts up",
            "open ports",
            "summaries",
            "complete",
            "id",
        ],
    ),
    hide_index=True,
    key="history_table",
)
if not rows:
    st.warning("No report matches the search.")
    st.stop()
by_id = {r.id: r for r in history}
ids = [r.id for r in rows]
if st.session_state.get("report_pick") not in ids:
    st.session_state["report_pick"] = ids[0]
picked = st.selectbox(
    "Report", ids, key="report_pick", format_func=lambda i: report_tabs.label(by_id[i])
)

try:
    view = report_tabs.load_view(store_key, picked)
except NotFound:
    st.error("That report was deleted. Pick another one.")
    st.stop()
except StoreError as exc:
    st.error(ui.escape_md_keep_code(f"The report could not be read: {exc}"))
    st.stop()
tab_report, tab_diff, tab_export = st.tabs(["Report", "Diff", "Export and delete"])

with tab_report:
    report_tabs.report_tab(svc.store, view)
with tab_diff:
    report_tabs.diff_tab(svc.store, store_key, history, picked)
with tab_export:
    report_tabs.export_tab(svc.store, view.report)
