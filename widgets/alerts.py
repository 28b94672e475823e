"""Rendering blocks of the Alerts page: the alert list, one alert's facts, its deliveries, and
the diff it was raised for. Everything from a scan or a model is shown as text or in tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

import ui
from monitor.delivery import redact_url
from monitor.models import Alert, Delivery
from monitor.storage import MonitorStore
from services import Services
from store.base import StoreError
from widgets import report_tabs
from widgets.schedules import monitor_store


def unread_label(svc: Services) -> str:
    """``Alerts (3)`` for the navigation when three are unread; ``Alerts`` otherwise."""
    try:
        n = monitor_store(svc).unread_count()
    except StoreError:
        return "Alerts"
    return f"Alerts ({n})" if n else "Alerts"


def alerts_frame(alerts: list[Alert]) -> pd.DataFrame:
    """One row an alert, newest first."""
    return pd.DataFrame(
        [
            {
                "id": a.id,
                "when": ui.when(a.created_at),
                "read": a.read,
                "schedule": a.payload.get("schedule_name", ""),
                "opened": len(a.payload.get("opened", [])),
                "new hosts": len(a.payload.get("new_hosts", [])),
                "high risk": len(a.payload.get("risk_high", [])),
                "what": a.payload.get("text", ""),
            }
            for a in alerts
        ],
        columns=["id", "when", "read", "schedule", "opened", "new hosts", "high risk", "what"],
    )


def _flat(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Nested values (a new host's ports, a change's before and after) as JSON text cells."""
    return pd.json_normalize(rows).astype(str) if rows else pd.DataFrame()


def facts(alert: Alert) -> None:
    """The alert's line, each kind of change as a table, and the brief as plain text."""
    p = alert.payload
    st.text(p.get("text", ""))
    for key, title in (
        ("opened", "Opened ports"),
        ("new_hosts", "New hosts"),
        ("risk_high", "High or critical risk"),
        ("closed", "Closed ports"),
        ("gone_hosts", "Gone hosts"),
        ("changed", "Changed services"),
    ):
        if p.get(key):
            st.markdown(f"**{title}**")
            st.dataframe(_flat(p[key]), hide_index=True, key=f"alert_{key}")
    st.markdown("**Change brief**")
    if p.get("brief"):
        st.text(p["brief"])
    else:
        st.caption("No brief for this alert.")
    if p.get("brief_note"):
        st.caption(ui.escape_md(str(p["brief_note"])))


def deliveries(rows: list[Delivery]) -> None:
    """Each webhook and e-mail delivery with its attempts; URLs without their secret path."""
    if not rows:
        st.caption("This schedule alerts in the app only.")
        return
    frame = pd.DataFrame(
        [
            {
                "channel": d.channel,
                "to": redact_url(d.target) if d.channel == "webhook" else d.target,
                "status": d.status,
                "attempts": d.attempts,
                "last error": d.last_error,
                "next try": ui.when(d.next_attempt_at) if d.status == "pending" else "—",
            }
            for d in rows
        ]
    )
    st.dataframe(frame, hide_index=True, key="alert_deliveries")


def diff(svc: Services, alert: Alert) -> None:
    """The diff the alert was raised for, as the Reports page shows it."""
    old, new = alert.payload.get("previous_report_id"), alert.payload.get("report_id")
    if not (old and new):
        return
    try:
        d = report_tabs.load_diff(svc.store.describe(), str(old), str(new))
    except StoreError as exc:
        st.warning(ui.escape_md_keep_code(f"The reports of this alert could not be read: {exc}"))
        return
    report_tabs.diff_summary(d)


def mark(store: MonitorStore, ids: list[str], read: bool) -> None:
    """A button callback: mark alerts read (or unread); a failure is shown on the next run."""
    try:
        store.mark_read(ids, read)
    except StoreError as exc:
        st.session_state["alerts_failure"] = str(exc)
