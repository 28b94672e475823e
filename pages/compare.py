"""Compare models: several models answer the same report side by side."""

import streamlit as st

st.title("Compare models")
st.info("Side-by-side model comparisons arrive here.")
