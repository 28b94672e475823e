"""Rendering blocks of the Schedules page: the add form, the schedules and runs tables, and the
pause / resume / remove controls (each checked by the core where it runs)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from auth import Forbidden, Identity
from config import Config, ConfigError
from monitor import open_monitor_store
from monitor import settings as monitor_settings
from monitor.delivery import redact_url
from monitor.errors import MonitorError
from monitor.models import ALERT_ON, DEFAULT_ALERT_ON, Run, Schedule
from monitor.schedules import ScheduleSpec, remove_schedule, set_paused
from monitor.storage import MonitorStore
from scanner.profiles import PROFILES
from services import Services
from store.base import StoreError


@st.cache_resource(show_spinner=False)
def _monitor_store(store_key: str, _cfg: Config) -> MonitorStore:
    return open_monitor_store(_cfg)


def monitor_store(svc: Services) -> MonitorStore:
    """The monitor's store for these services, opened once per process."""
    return _monitor_store(f"{svc.config.store}:{svc.config.db_path}", svc.config)


def settings_or_stop() -> monitor_settings.MonitorSettings:
    """The monitor settings; a bad one stops the page with its message."""
    try:
        return monitor_settings.load()
    except ConfigError as exc:
        st.error(ui.escape_md_keep_code(f"ScanScribe cannot start: {exc}"))
        st.stop()
        raise AssertionError("st.stop() does not return") from exc


def _lines(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.replace(",", "\n").splitlines() if x.strip())


def add_form() -> ScheduleSpec | None:
    """The form that describes a new schedule; the spec once submitted (checked by the core)."""
    with st.form("schedule_add", border=True):
        name = st.text_input("Name", key="sched_name")
        targets = st.text_input("Targets", key="sched_targets", placeholder="127.0.0.1 10.0.0.0/24")
        c1, c2 = st.columns(2)
        profile = c1.selectbox("Profile", list(PROFILES), key="sched_profile")
        ports = c2.text_input("Ports (optional)", key="sched_ports", placeholder="22,80,443")
        kind = st.radio(
            "Cadence",
            ["every", "cron"],
            key="sched_kind",
            horizontal=True,
            format_func=lambda k: "Every …" if k == "every" else "Cron expression",
        )
        c3, c4 = st.columns(2)
        value = c3.text_input("Every (30m, 6h, 1d) or cron (0 3 * * *)", key="sched_cadence")
        tz = c4.text_input("Time zone (cron only)", key="sched_tz", placeholder="UTC")
        webhooks = st.text_area("Webhook URLs (one a line)", key="sched_webhooks")
        emails = st.text_area("E-mail addresses (one a line)", key="sched_emails")
        alert_on = st.multiselect(
            "Alert on", list(ALERT_ON), default=list(DEFAULT_ALERT_ON), key="sched_alert_on"
        )
        brief = st.text_input("Change brief model (optional)", key="sched_brief")
        submitted = st.form_submit_button("Add schedule", key="sched_add")
    if not submitted:
        return None
    return ScheduleSpec(
        name=name,
        targets=targets,
        profile=str(profile),
        ports=ports,
        every=value if kind == "every" else None,
        cron=value if kind == "cron" else None,
        tz=(tz.strip() or None) if kind == "cron" else None,
        webhooks=_lines(webhooks),
        emails=_lines(emails),
        alert_on=tuple(alert_on),
        brief_model=brief or None,
    )


def schedules_frame(schedules: list[Schedule]) -> pd.DataFrame:
    """One row a schedule; webhook URLs shown without their secret path."""
    return pd.DataFrame(
        [
            {
                "id": s.id,
                "name": s.name,
                "state": "active" if s.active else "paused",
                "profile": s.profile,
                "targets": " ".join(s.targets),
                "ports": s.ports,
                "cadence": s.cadence_text,
                "next run": ui.when(s.next_run) if s.active else "—",
                "alert on": ", ".join(s.alert_on),
                "webhooks": ", ".join(redact_url(u) for u in s.webhooks),
                "e-mail": ", ".join(s.emails),
                "owner": s.owner,
            }
            for s in schedules
        ],
        columns=[
            "id",
            "name",
            "state",
            "profile",
            "targets",
            "ports",
            "cadence",
            "next run",
            "alert on",
            "webhooks",
            "e-mail",
            "owner",
        ],
    )


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row a run: due time, job, report, status and alerts sent."""
    return pd.DataFrame(
        [
            {
                "due": ui.when(r.due_at),
                "status": r.status,
                "job": r.job_id or "",
                "report": r.report_id or "",
                "alert": r.alert_id or "",
                "alerts sent": r.delivered,
                "note": r.error,
            }
            for r in runs
        ],
        columns=["due", "status", "job", "report", "alert", "alerts sent", "note"],
    )


def _change(
    store: MonitorStore, gate_svc: Services, who: Identity | None, sid: str, what: str
) -> None:
    st.session_state.pop("sched_failure", None)
    try:
        if what == "remove":
            remove_schedule(store, sid, gate=gate_svc.gate, who=who)
        else:
            set_paused(store, sid, what == "pause", gate=gate_svc.gate, who=who)
    except (MonitorError, StoreError, Forbidden) as exc:
        st.session_state["sched_failure"] = str(exc)


def manage(svc: Services, store: MonitorStore, who: Identity | None, s: Schedule) -> None:
    """Pause or resume, and remove with a confirmation; failures shown escaped."""
    c1, c2, c3 = st.columns([1, 1, 2])
    if s.active:
        c1.button(
            "Pause", key="sched_pause", on_click=_change, args=(store, svc, who, s.id, "pause")
        )
    else:
        c1.button(
            "Resume", key="sched_resume", on_click=_change, args=(store, svc, who, s.id, "resume")
        )
    sure = c3.checkbox("Yes, remove this schedule", key="sched_remove_sure")
    c2.button(
        "Remove",
        key="sched_remove",
        disabled=not sure,
        on_click=_change,
        args=(store, svc, who, s.id, "remove"),
    )
    failure = st.session_state.get("sched_failure")
    if failure:
        st.error(ui.escape_md(str(failure)))
