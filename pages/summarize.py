"""Summarize: stream a summary of a report (or of a diff) from a local Ollama model."""

from __future__ import annotations

import streamlit as st

import ui
from llm.prompt import AUDIENCES
from llm.summarize import SummaryRun
from store.base import NotFound, StoreError
from widgets import summary

ui.page_guard()
st.title("Summarize")
svc = ui.get_services()
ss = st.session_state
summary.recover_once(svc.store.describe(), svc.store)

reports = ui.last_good("reports", svc.store.list_reports, "the report list")
if not reports:
    st.info("No report yet. Run a scan on the Scan page, or import nmap XML on the Reports page.")
    st.stop()

# ?summary=ID opens a saved summary with its report (or its pair) picked.
asked = ui.url_id("summary")
if asked and ss.get("sum_url_summary") != asked:
    ss["sum_url_summary"] = asked
    wanted = None
    try:
        wanted = svc.store.get_summary(asked)
    except NotFound:
        ui.unknown_id("summary", asked)
    except StoreError as exc:
        st.error(ui.escape_md_keep_code(f"The summary could not be read: {exc}"))
    if wanted is not None and wanted.report_id not in {r.id for r in reports}:
        ui.unknown_id("report", wanted.report_id)
    elif wanted is not None:
        ss.update(sum_report=wanted.report_id, sum_saved_pick=wanted.id)
        ss["sum_mode"] = "diff" if wanted.base_report_id else "report"
        if wanted.base_report_id:
            ss.update(sum_base=wanted.base_report_id, sum_base_for=wanted.report_id)

# -- what to summarize, with which model, for whom -------------------------------------------------
# The pickers span the page: a report's label ends with its id, which must stay in view.
mode, report_id, _ = ui.pick_report_or_diff(
    svc.store, reports, "sum", "Changes since an earlier report"
)
left, right = st.columns(2)
with left:
    models = summary.model_select(svc.llm)
with right:
    st.radio(
        "Audience",
        AUDIENCES,
        key="sum_audience",
        horizontal=True,
        format_func=lambda a: ui.AUDIENCE_LABELS[a],
    )

run: SummaryRun | None = ss.get("sum_run")
busy = run is not None and not run.finished
diff_ready = mode != "diff" or bool(ss.get("sum_base"))
if ui.can("summarize"):
    st.button(
        "Summarize",
        key="sum_go",
        type="primary",
        on_click=summary.start,
        args=(svc,),
        disabled=busy or not models or not diff_ready,
    )
else:
    st.caption("Your role can read saved summaries; an analyst or admin can write new ones.")

# -- this session's summary, then the saved ones ---------------------------------------------------
if "sum_failure" in ss:
    # The message may quote the Ollama server; its fix (`ollama pull ...`) stays code.
    st.error(ui.escape_md_keep_code(ss["sum_failure"]))
    summary.retry_button(svc)
elif run is not None:
    summary.current(svc, run)

st.subheader("Saved summaries of this report")
saved = ui.last_good(
    f"summaries:{report_id}",
    lambda: svc.store.list_summaries(report_id),
    "the saved summaries",
)
ss["sum_url_summary"] = summary.saved_list(svc.store, saved)
ui.set_url(summary=ss["sum_url_summary"])
