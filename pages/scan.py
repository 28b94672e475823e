"""Scan: run nmap against targets inside the configured scope."""

import streamlit as st

st.title("Scan")
st.info("Scanning from the browser arrives here: scoped targets, fixed profiles, live progress.")
