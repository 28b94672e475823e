"""Scan: start a scoped nmap scan, watch it run, cancel it, and read the report it saves."""

from __future__ import annotations

import shutil

import streamlit as st

import actions
import ui
from auth import Forbidden
from scanner.errors import ScanError
from scanner.nmapbin import install_hint, is_root
from store.base import StoreError
from store.records import JOB_ACTIVE
from widgets import scan_jobs, workers

ui.page_guard()
st.title("Scan")
svc = ui.get_services()
runner = svc.runner
who = ui.identity()
allowed = ui.can("scan")
nmap_found = shutil.which("nmap") is not None
root = is_root()

if not allowed:
    role = who.role if who else "no"
    st.info(f"Your account has the {role} role: it can read reports but not start scans.")
if not nmap_found:
    st.error(f"nmap is not installed. Install it with `{install_hint()}`, then reload.")

site = workers.site_picker(runner) if allowed else ""  # only with a broker
request = scan_jobs.scan_form(svc.config.scope, root, disabled=not nmap_found) if allowed else None
if request is not None:
    if not request.authorized:
        st.error("Tick “I am authorized to scan these targets” first; nothing was started.")
    else:
        try:
            job = actions.start_scan(
                svc, who, request.targets, request.profile_id, request.ports, site=site
            )
        except (ScanError, StoreError, Forbidden) as exc:
            # Refusals quote what was typed: escaped, so it can never become a link or markup.
            st.error(ui.escape_md(str(exc)))
        else:
            st.success(f"Scan queued as job {job.id}.")

try:
    initial_active = {j.id for j in svc.store.list_jobs(statuses=JOB_ACTIVE)}
except StoreError as exc:
    st.error(ui.escape_md_keep_code(str(exc)))
    st.stop()

scan_jobs.jobs_panel(svc, who, initial_active)
scan_jobs.my_results(svc.store, ui.current_user())
