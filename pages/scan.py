"""Scan: start a scoped nmap scan, watch it run, cancel it, and read the report it saves."""

from __future__ import annotations

import shutil

import streamlit as st

import ui
from scanner.errors import ScanError
from scanner.nmapbin import install_hint, is_root
from store.base import StoreError
from store.records import JOB_ACTIVE
from widgets import scan_jobs

ui.page_guard()
st.title("Scan")
svc = ui.get_services()
runner = svc.runner
why_not = ui.access().scan_refusal()
allowed = why_not is None
nmap_found = shutil.which("nmap") is not None
root = is_root()
st.session_state.setdefault("scan_jobs", [])

if why_not is not None:
    st.error(why_not)
if not nmap_found:
    st.error(f"nmap is not installed. Install it with `{install_hint()}`, then reload.")

request = scan_jobs.scan_form(svc.config.scope, root, disabled=not allowed or not nmap_found)
if request is not None:
    if not request.authorized:
        st.error("Tick “I am authorized to scan these targets” first; nothing was started.")
    else:
        try:
            job = runner.submit(
                request.targets, request.profile_id, request.ports, owner=ui.current_user()
            )
        except (ScanError, StoreError) as exc:
            # Refusals quote what was typed: escaped, so it can never become a link or markup.
            st.error(ui.escape_md(str(exc)))
        else:
            st.session_state["scan_jobs"].insert(0, job.id)
            st.success(f"Scan queued as job {job.id}.")

try:
    initial_active = {j.id for j in svc.store.list_jobs(statuses=JOB_ACTIVE)}
except StoreError as exc:
    st.error(ui.escape_md_keep_code(str(exc)))
    st.stop()

scan_jobs.jobs_panel(svc.store, runner, initial_active)
scan_jobs.my_results(svc.store, st.session_state["scan_jobs"])
