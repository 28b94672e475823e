"""Audit: every scan with who started it, when, against what, with which profile, its outcome."""

from __future__ import annotations

import streamlit as st

import ui
from scanner import export

ui.page_guard()
st.title("Audit")
st.caption("Every scan job recorded by this ScanScribe, newest first.")
svc = ui.get_services()
jobs = ui.last_good("jobs", svc.store.list_jobs, "the job list")
who = st.multiselect("Who", sorted({j.owner for j in jobs}), key="audit_who")
if who:
    jobs = [j for j in jobs if j.owner in who]
st.dataframe(export.audit_table(jobs), hide_index=True, width="stretch")
st.download_button(
    "Export CSV",
    export.audit_csv(jobs).encode(),
    file_name="scanscribe-audit.csv",
    mime="text/csv",
    key="audit_csv",
)
