"""The Scan page's blocks: the scan form, the live jobs panel, this session's scan results."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

import actions
import ui
from auth import Forbidden, Identity, role_allows
from config import Network
from scanner.models import Host, Report, host_frame
from scanner.profiles import PROFILES
from scanner.progress import Overall, overall, phase_words
from store.base import Store, StoreError
from store.records import JOB_ACTIVE, Job

if TYPE_CHECKING:
    from services import Services

RECENT_JOBS = 10
OWN_JOBS_SCANNED = 100  # recent jobs of everyone, searched for this user's finished ones


@dataclass(frozen=True)
class ScanRequest:
    """What the scan form held when Scan was pressed."""

    targets: str
    profile_id: str
    ports: str
    authorized: bool


# -- the form --------------------------------------------------------------------------------------
def scan_form(scope: tuple[Network, ...], root: bool, disabled: bool) -> ScanRequest | None:
    """Targets, profile, ports and the authorization box; returns them when Scan was pressed."""
    choices = [p for p in PROFILES.values() if root or not p.needs_root]
    with st.form("scan_form", border=True):
        targets = st.text_input(
            "Targets",
            key="scan_targets",
            placeholder="127.0.0.1, 10.0.0.0/28, 10.0.0.5-9, host.example",
            help="Addresses, CIDR blocks, dash ranges or hostnames, separated by spaces or commas. "
            "Only addresses inside the scope " + ", ".join(str(n) for n in scope) + ".",
        )
        profile_id = st.selectbox(
            "Profile",
            [p.id for p in choices],
            key="scan_profile",
            format_func=lambda pid: (
                f"{PROFILES[pid].title} — {PROFILES[pid].description} "
                f"Typically {PROFILES[pid].typical}."
            ),
        )
        with st.expander("The nmap arguments of each profile"):
            st.markdown(
                "\n".join(
                    f"- **{p.title}** ({p.typical}): `nmap {p.command(root)}`" for p in choices
                )
            )
        if not root:
            st.caption(
                "Deep and UDP are disabled: they need root for raw packets. "
                "Run ScanScribe as root to use them."
            )
        ports = st.text_input(
            "Ports (optional)",
            key="scan_ports",
            placeholder="22,80,443,8000-8100",
            help="Replaces the profile's port selection. Numbers and ranges from 1 to 65535.",
        )
        authorized = st.checkbox("I am authorized to scan these targets", key="scan_authorized")
        submitted = st.form_submit_button(
            "Scan", key="scan_submit", type="primary", disabled=disabled
        )
    if not submitted:
        return None
    return ScanRequest(targets, profile_id or "", ports, authorized)


# -- running and recent jobs -----------------------------------------------------------------------
def jobs_panel(svc: Services, who: Identity | None, initial_active: set[str]) -> None:
    """The running and recent jobs, redrawn every second while a job was running at page load."""
    # Wrapped on each call, not at import: whether to poll depends on this run's jobs.
    panel = st.fragment(_jobs_panel, run_every=1.0 if initial_active else None)
    panel(svc, who, initial_active)


def _may_cancel(who: Identity | None, job: Job) -> bool:
    if who is None:
        return False
    return role_allows(who.role, "cancel" if job.owner == who.name else "cancel.any")


def _jobs_panel(svc: Services, who: Identity | None, initial_active: set[str]) -> None:
    """Live progress of every running job, a Cancel button each, and the recent jobs table."""
    store = svc.store
    jobs = store.list_jobs(limit=RECENT_JOBS)
    active = [j for j in jobs if j.status in JOB_ACTIVE]
    st.subheader("Running")
    if not active:
        st.caption("No scan is running.")
    for job in active:
        with st.container(border=True, key=f"job_{job.id}"):
            st.text(f"{job.profile} · {' '.join(job.targets)} · {job.id}")
            line = progress_line(job, time.time())
            st.progress(bar_value(job), text=ui.escape_md(line))
            if _may_cancel(who, job) and st.button("Cancel", key=f"cancel_{job.id}"):
                try:
                    actions.cancel_scan(svc, who, job.id)
                except (Forbidden, StoreError) as exc:
                    st.error(ui.escape_md_keep_code(str(exc)))
                else:
                    st.rerun()
    if {j.id for j in active} != initial_active:
        # A job started or ended: a full rerun shows its report and starts or stops polling.
        st.rerun()

    st.subheader("Recent jobs")
    if jobs:
        st.dataframe(
            [
                {
                    "job": j.id,
                    "status": j.status,
                    "profile": j.profile,
                    "targets": " ".join(j.targets),
                    "started": ui.when(j.started_at),
                    "finished": ui.when(j.finished_at),
                    "note": j.error,
                }
                for j in jobs
            ],
            hide_index=True,
            key="scan_recent_jobs",
        )
    elif who is not None and role_allows(who.role, "scan"):
        st.caption("No scans yet. Type a target above, tick the box and press Scan.")
    else:
        st.caption("No scans yet.")


def progress_line(job: Job, now: float) -> str:
    """What the progress bar says: phase in words, step, overall percent, time taken and left."""
    if job.status == "queued":
        return "Queued: waiting for a free scan slot."
    took = f" · running {ui.duration(now - job.started_at)}" if job.started_at else ""
    left = f", about {ui.duration(job.eta_s)} left in this step" if job.eta_s is not None else ""
    where = _overall(job)
    if not job.task:
        return f"nmap starting{took}"
    if where is None:
        return f"{phase_words(job.task)}: {job.progress:.0f} %{left}{took}"
    return (
        f"Step {where.step} of {where.steps} · {where.phase}: {job.progress:.0f} %{left} · "
        f"overall {where.percent:.0f} %{took}"
    )


def _overall(job: Job) -> Overall | None:
    profile = PROFILES.get(job.profile)
    return overall(profile.args, job.task, job.progress) if profile else None


def bar_value(job: Job) -> int:
    """The progress bar's value: the whole scan's progress where the phase is known."""
    where = _overall(job)
    return min(100, max(0, int(where.percent if where else job.progress)))


# -- results ---------------------------------------------------------------------------------------
def my_results(store: Store, owner: str) -> None:
    """One expander per finished scan of ``owner`` (the newest open): its report or error.

    Read from the store, so the list survives a reload and follows the user to another tab.
    """
    try:
        jobs = store.list_jobs(limit=OWN_JOBS_SCANNED)
    except StoreError as exc:
        st.error(ui.escape_md_keep_code(str(exc)))
        return
    mine = [j for j in jobs if j.owner == owner and j.status not in JOB_ACTIVE][:RECENT_JOBS]
    if mine:
        st.subheader("Results of your scans")
    for n, job in enumerate(mine):
        label = ui.escape_md(
            f"{job.profile} · {' '.join(job.targets)} · {job.status} · {ui.when(job.finished_at)}"
        )
        with st.expander(label, expanded=n == 0):
            if job.status != "done" or not job.report_id:
                st.error(ui.escape_md(job.error or f"The scan ended as {job.status}."))
                continue
            took = (job.finished_at or 0) - (job.started_at or job.finished_at or 0)
            st.progress(100, text=f"Done: {job.progress:.0f} % in {ui.duration(took)}")
            if st.button("Open in Reports", key=f"open_{job.id}", icon=":material/table_view:"):
                st.switch_page(ui.PAGE_DIR / "reports.py", query_params={"report": job.report_id})
            try:
                render_report(store.get_report(job.report_id))
            except StoreError as exc:
                st.error(ui.escape_md_keep_code(str(exc)))


def render_report(report: Report) -> None:
    """Hosts, open ports, versions and script output of one report, all shown as text."""
    cols = st.columns(3)
    cols[0].metric("Hosts up", report.hosts_up)
    cols[1].metric("Open ports", report.open_port_count)
    cols[2].metric("Timed out", sum(1 for h in report.hosts if h.timed_out))
    if not report.complete:
        st.warning("nmap's output was incomplete: " + ui.escape_md(report.note))
    if not report.hosts:
        st.info("No host answered.")
        return
    st.dataframe(host_frame(report), hide_index=True, key=f"hosts_{report.id}")
    for host in report.hosts:
        _host(report.id, host)


def _host(report_id: str, host: Host) -> None:
    """One host: address and status, a timeout warning, OS guess, ports, then script output."""
    names = f" ({', '.join(host.hostnames)})" if host.hostnames else ""
    st.text(f"{host.address}{names} — {host.status}")
    if host.timed_out:
        st.warning(
            "Host timed out: nmap gave up on it before finishing, so its ports are unknown. "
            "This is not a clean result."
        )
    if host.os_guess:
        st.text(f"OS guess: {host.os_guess}")
    rows = [
        {
            "port": p.port,
            "protocol": p.protocol,
            "state": p.state,
            "service": p.service,
            "product": p.product,
            "version": p.version,
            "extra": p.extrainfo,
            "cpe": " ".join(p.cpe),
        }
        for p in host.ports
    ]
    if rows:
        st.dataframe(rows, hide_index=True, key=f"ports_{report_id}_{host.address}")
    elif not host.timed_out and host.status == "up":
        st.caption("No open ports found among the ports scanned.")
    for p in host.ports:
        for script in p.scripts:
            st.caption(f"{p.label} · {ui.escape_md(script.id)}")
            st.code(script.output, language=None)
    for script in host.scripts:
        st.caption(f"host · {ui.escape_md(script.id)}")
        st.code(script.output, language=None)
