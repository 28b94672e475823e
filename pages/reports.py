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

# -- what the address asks for: ?report=ID, or ?diff=OLD..NEW -----------------------------------
by_id = {r.id: r for r in history}
ss = st.session_state
asked = st.query_params.get("diff") or st.query_params.get("report")
if asked and ss.get("report_url") != asked:
    ss["report_url"] = asked
    old, two, new = asked.partition("..")
    if two and old in by_id and new in by_id:
        ss.update(report_pick=new, diff_for=new, diff_old=old, diff_new=new, report_view="Diff")
        ss.update(report_search="", report_kind="all reports")
    elif not two and asked in by_id:
        ss.update(report_pick=asked, report_view="Report")
        ss.update(report_search="", report_kind="all reports")
    else:
        ui.unknown_id("pair of reports" if two else "report", asked)


def _open_row(row_ids: list[str]) -> None:
    """History row selected: open that report."""
    rows_now = ss["history_table"].selection.rows
    if rows_now:
        ss.update(report_pick=row_ids[rows_now[0]], report_view="Report")


# -- history -----------------------------------------------------------------------------------
st.subheader("History")
h1, h2 = st.columns([3, 1])
search = h1.text_input(
    "Search reports",
    key="report_search",
    placeholder="id, target, profile or file name",
    bind="query-params",
)
kind = h2.selectbox(
    "Show",
    ("all reports", "scans", "imports", "incomplete"),
    key="report_kind",
    bind="query-params",
)
needle = search.strip().lower()
rows = [
    r
    for r in history
    if (not needle or needle in ui.report_label(r).lower() or needle in r.source.lower())
    and (
        kind == "all reports"
        or (kind == "scans" and r.source == "scan")
        or (kind == "imports" and r.source.startswith("import"))
        or (kind == "incomplete" and not r.complete)
    )
][:500]
st.caption("Select a row to open that report.")
st.dataframe(
    pd.DataFrame(
        [
            {
                "scanned": ui.when(r.scanned_at),
                "imported": ui.when(r.created_at) if r.source != "scan" else "",
                "targets": " ".join(r.targets)[:200],
                "profile / source": ui.source_name(r),
                "hosts up": r.hosts_up,
                "open ports": r.open_ports,
                "summaries": r.summaries,
                "complete": r.complete,
                "id": r.id,
            }
            for r in rows
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
    on_select=lambda: _open_row([r.id for r in rows]),
    selection_mode="single-row",
)
if not rows:
    st.warning("No report matches the search.")
    st.stop()
ids = [r.id for r in rows]
if ss.get("report_pick") not in ids:
    ss["report_pick"] = ids[0]
picked = st.selectbox(
    "Report",
    ids,
    key="report_pick",
    format_func=lambda i: ui.report_label(by_id[i]),
    help="Type part of a file name, target, profile or id to search.",
)

try:
    view = report_tabs.load_view(store_key, picked)
except NotFound:
    st.error("That report was deleted. Pick another one.")
    st.stop()
except StoreError as exc:
    st.error(ui.escape_md_keep_code(f"The report could not be read: {exc}"))
    st.stop()
report_tabs.report_actions(picked)
tab_report, tab_diff, tab_export = st.tabs(
    ["Report", "Diff", "Export and delete"], key="report_view", on_change="rerun"
)

with tab_report:
    report_tabs.report_tab(svc.store, view)
with tab_diff:
    report_tabs.diff_tab(svc.store, store_key, history, picked)
with tab_export:
    report_tabs.export_tab(svc.store, view.report)

# The address names what is on screen, so a reload or a colleague sees the same thing.
if ss.get("report_view") == "Diff" and ss.get("diff_old") != ss.get("diff_new"):
    ss["report_url"] = f"{ss['diff_old']}..{ss['diff_new']}"
    ui.set_url(report=None, diff=ss["report_url"])
else:
    ss["report_url"] = picked
    ui.set_url(report=picked, diff=None)
