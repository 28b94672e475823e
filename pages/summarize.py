"""Summarize: stream an executive summary from a local Ollama model."""

import streamlit as st

st.title("Summarize")
st.info("Executive summaries streamed from a local Ollama model arrive here.")
