"""Audit: who did what, to what, when, from where, and how it ended (admins only)."""

from __future__ import annotations

import datetime as dt

import streamlit as st

import actions
import ui
from auth import Forbidden
from scanner import export

ui.page_guard()
st.title("Audit")
svc = ui.get_services()
who = ui.identity()
try:
    svc.gate.allow(who, "audit.read", "audit trail")
except Forbidden as exc:
    st.error(ui.escape_md_keep_code(str(exc)))
    st.stop()
st.caption(
    "Every login, scan, import, delete, summary, comparison, verdict, export and account change, "
    "newest first. Entries are only ever added."
)
events = ui.last_good("audit", svc.store.list_audit, "the audit trail")
f1, f2, f3 = st.columns([2, 2, 2])
people = f1.multiselect("Who", sorted({e.actor for e in events}), key="audit_who")
kinds = f2.multiselect("Action", sorted({e.action for e in events}), key="audit_action")
today = dt.date.today()
span = f3.date_input(
    "When", value=(today - dt.timedelta(days=30), today), key="audit_when", format="YYYY-MM-DD"
)
shown = [
    e
    for e in events
    if (not people or e.actor in people)
    and (not kinds or e.action in kinds)
    and export.audit_in_span(e, span)
]
st.dataframe(export.audit_events_table(shown), hide_index=True, width="stretch")
st.caption(f"{len(shown)} of {len(events)} entries.")


def _csv() -> str:
    actions.record_export(svc, who, "audit CSV", "audit trail")
    return export.audit_events_csv(shown)


st.download_button(
    "Export CSV", _csv, file_name="scanscribe-audit.csv", mime="text/csv", key="audit_csv"
)
jobs = ui.last_good("jobs", svc.store.list_jobs, "the job list")
with st.expander("Scan jobs"):
    st.dataframe(export.audit_table(jobs), hide_index=True, width="stretch")
