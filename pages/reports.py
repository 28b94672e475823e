"""Reports: history, hosts, ports, risk, diff, import and export."""

import streamlit as st

st.title("Reports")
st.info("Saved reports, their risk, diffs, imports and exports arrive here.")
