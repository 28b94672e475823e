"""Compare models: 2–4 models answer the same report side by side, scored against the scan."""

from __future__ import annotations

import streamlit as st

import ui
from llm.compare import ComparisonRun
from llm.compare_tables import leaderboard_rows
from llm.leaderboard import leaderboard
from store.base import StoreError
from store.records import Comparison
from widgets import comparison

ui.page_guard()
st.title("Compare models")
st.caption(
    "The same prompt, options and seed for every model; the answers stream side by side and "
    "each is checked against the scan."
)
svc = ui.get_services()
ss = st.session_state


def _reopen() -> None:
    if ss.get("cmp_saved"):
        ss["cmp_view"] = ss["cmp_saved"]


# -- setup ----------------------------------------------------------------------------------------
reports = ui.last_good("reports", svc.store.list_reports, "the report list")

run: ComparisonRun | None = ss.get("cmp_run")
busy = run is not None and not run.finished

if not reports:
    st.info("No report yet. Run a scan on the Scan page, or import nmap XML on the Reports page.")
elif ui.can("compare"):
    comparison.start_form(svc, reports, busy)
else:
    st.caption("Your role can read saved comparisons; an analyst or admin can start new ones.")

if "cmp_failure" in ss:
    st.error(ui.escape_md_keep_code(ss["cmp_failure"]))

# -- the running comparison, then the one being looked at ------------------------------------------
run = ss.get("cmp_run")
if run is not None and not run.finished:
    comparison.drain(run)
    st.rerun()

asked = ui.url_id("comparison")  # ?comparison=ID, a link to a saved comparison
if asked and ss.get("cmp_url_comparison") != asked:
    ss["cmp_url_comparison"] = ss["cmp_view"] = asked
view_id = ss.get("cmp_view")
current: Comparison | None = None
if run is not None and run.id == view_id and run.save_error:
    # The answers are still here even though the store refused them: show them, say so.
    st.error(ui.escape_md_keep_code(f"The comparison could not be saved: {run.save_error}"))
    current = run.comparison
elif view_id:
    try:
        current = svc.store.get_comparison(view_id)
    except StoreError as exc:
        st.error(ui.escape_md_keep_code(f"The comparison could not be opened: {exc}"))
        ss.pop("cmp_view", None)
if current is not None:
    ss["cmp_url_comparison"] = current.id
    ui.set_url(comparison=current.id)
    with st.container(border=True, key="cmp_result"):
        comparison.show(svc.store, current)

st.subheader("Saved comparisons")
try:
    saved = svc.store.list_comparisons()
except StoreError as exc:
    st.error(ui.escape_md_keep_code(f"The store could not be read: {exc}"))
    st.stop()
if not saved:
    st.caption("None yet.")
else:
    st.selectbox(
        "Reopen a saved comparison",
        [c.id for c in saved],
        index=None,
        key="cmp_saved",
        on_change=_reopen,
        placeholder="Pick a saved comparison",
        format_func=lambda cid: next(
            f"{ui.when(c.created_at)} — {', '.join(c.models)} — {c.report_id}"
            + (f" — winner: {c.winner}" if c.winner else "")
            for c in saved
            if c.id == cid
        ),
    )

    st.subheader("Leaderboard")
    st.caption(
        "Wins, ties and losses count the comparisons with a verdict; averages cover every "
        "complete answer."
    )
    comparison.table(leaderboard_rows(leaderboard(saved)), "cmp_leaderboard")
