"""ScanScribe: the Streamlit entry point. It wires the pages together and nothing else."""

from __future__ import annotations

import logging

import streamlit as st

import ui

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="ScanScribe", page_icon=":material/radar:", layout="wide")
ui.login_gate()

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("pages/scan.py", title="Scan", icon=":material/radar:"),
    st.Page("pages/reports.py", title="Reports", icon=":material/table_view:"),
    st.Page("pages/summarize.py", title="Summarize", icon=":material/summarize:"),
    st.Page("pages/compare.py", title="Compare models", icon=":material/compare:"),
    st.Page("pages/audit.py", title="Audit", icon=":material/policy:"),
    st.Page("pages/status.py", title="System status", icon=":material/monitor_heart:"),
]

st.navigation(PAGES).run()
