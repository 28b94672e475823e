"""ScanScribe: the Streamlit entry point. It wires the pages together and nothing else.

``app`` adds the login and logout endpoints to Streamlit's own server (``streamlit run``
finds it); each script run then renders the selected page behind the login gate.
"""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import ui
from auth import web

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

app = st.App(__file__, routes=web.routes(ui.login_backend))

if get_script_run_ctx(suppress_warning=True) is not None:
    ui.run_app()
