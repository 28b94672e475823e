"""Alerts: what the schedules found changed, how each alert was delivered, and the diff."""

from __future__ import annotations

import streamlit as st

import ui
from widgets import alerts as w
from widgets.schedules import monitor_store

ui.page_guard()
st.title("Alerts")
svc = ui.get_services()
mstore = monitor_store(svc)
alerts = ui.last_good("alerts", lambda: mstore.list_alerts(limit=500), "the alerts")
unread = [a.id for a in alerts if not a.read]
st.metric("Unread", len(unread))
if not alerts:
    st.info("No alerts yet: a schedule alerts when a run finds a change it watches for.")
    st.stop()
st.button(
    "Mark all read",
    key="alerts_all_read",
    disabled=not unread,
    on_click=w.mark,
    args=(mstore, unread, True),
)
st.dataframe(w.alerts_frame(alerts), hide_index=True, width="stretch", key="alerts_table")
by_id = {a.id: a for a in alerts}
picked = st.selectbox(
    "Alert",
    list(by_id),
    key="alerts_pick",
    format_func=lambda i: (
        f"{ui.when(by_id[i].created_at)} — {by_id[i].payload.get('schedule_name', '')} ({i})"
    ),
)
alert = by_id[picked]
if not alert.read:
    st.button("Mark read", key="alerts_read", on_click=w.mark, args=(mstore, [alert.id], True))
w.facts(alert)
st.subheader("Deliveries")
w.deliveries(ui.last_good(f"deliveries:{picked}", lambda: mstore.list_deliveries(picked), "them"))
st.subheader("Diff")
w.diff(svc, alert)
failure = st.session_state.pop("alerts_failure", None)
if failure:
    st.error(ui.escape_md_keep_code(str(failure)))
