"""Audit: every scan with who started it, when, against what, with which profile, its outcome."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from store import StoreError

ui.page_guard()
st.title("Audit")
st.caption("Every scan job recorded by this ScanScribe, newest first.")
svc = ui.get_services()
try:
    jobs = svc.store.list_jobs()
except StoreError as exc:
    st.error(f"The store could not be read: {exc}")
    st.stop()

frame = pd.DataFrame(
    [
        {
            "when": ui.when(j.created_at),
            "who": j.owner,
            "targets": " ".join(j.targets),
            "profile": j.profile,
            "ports": j.ports,
            "outcome": j.status,
            "finished": ui.when(j.finished_at),
            "report": j.report_id or "",
            "job": j.id,
        }
        for j in jobs
    ],
    columns=["when", "who", "targets", "profile", "ports", "outcome", "finished", "report", "job"],
)
who = st.multiselect("Who", sorted(set(frame["who"])), key="audit_who")
if who:
    frame = frame[frame["who"].isin(who)]
st.dataframe(frame, hide_index=True, width="stretch")
st.download_button(
    "Export CSV",
    frame.to_csv(index=False).encode(),
    file_name="scanscribe-audit.csv",
    mime="text/csv",
    key="audit_csv",
)
