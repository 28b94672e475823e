"""Schedules: scan targets on a cadence and be told when something changes."""

from __future__ import annotations

import streamlit as st

import ui
from auth import Forbidden
from monitor.errors import MonitorError
from monitor.schedules import create_schedule
from store.base import StoreError
from widgets import schedules as w

ui.page_guard()
st.title("Schedules")
st.caption(
    "Each schedule scans its targets on a cadence; after each run the report is compared with "
    "the previous one and a change you asked about raises an alert (Alerts page, webhook, e-mail)."
)
svc = ui.get_services()
who = ui.identity()
mstore = w.monitor_store(svc)
settings = w.settings_or_stop()

if ui.can("schedule.create"):
    with st.expander("Add a schedule", expanded=False):
        spec = w.add_form()
    if spec is not None:
        try:
            added = create_schedule(mstore, spec, svc.config, settings, gate=svc.gate, who=who)
        except (MonitorError, StoreError, Forbidden) as exc:
            st.error(ui.escape_md(str(exc)))  # quotes what was typed: escaped, never a link
        else:
            st.success(
                ui.escape_md(f"Schedule {added.name} saved; first run {ui.when(added.next_run)}.")
            )

schedules = ui.last_good("schedules", mstore.list_schedules, "the schedules")
if not schedules:
    st.info("No schedules yet.")
    st.stop()
st.dataframe(w.schedules_frame(schedules), hide_index=True, width="stretch")
by_id = {s.id: s for s in schedules}
picked = st.selectbox(
    "Schedule", list(by_id), key="sched_pick", format_func=lambda i: f"{by_id[i].name} ({i})"
)
if ui.can("schedule.create"):
    w.manage(svc, mstore, who, by_id[picked])
st.subheader("Runs")
runs = ui.last_good(f"runs:{picked}", lambda: mstore.list_runs(picked), "the runs")
st.dataframe(w.runs_frame(runs), hide_index=True, width="stretch")
