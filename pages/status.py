"""System status: is nmap installed, does Ollama answer, where does the store keep data."""

from __future__ import annotations

import streamlit as st

import ui
from llm.errors import LLMError
from scanner.nmapbin import find_nmap, install_hint, is_root

ui.page_guard()
st.title("System status")
svc = ui.get_services()

with st.container(border=True, key="status_nmap"):
    st.subheader("nmap")
    info = find_nmap()
    if info is None:
        st.error(f"nmap is not installed. Install it with `{install_hint()}`, then reload.")
    else:
        st.success(f"nmap {info.version} found at {info.path}")
        if not is_root():
            st.info("Not running as root: the deep and udp profiles are disabled.")
    st.caption("Scope: " + ", ".join(str(n) for n in svc.config.scope))

with st.container(border=True, key="status_ollama"):
    st.subheader("Ollama")
    st.caption(f"OLLAMA_HOST = {svc.config.ollama_host}")
    try:
        version = svc.llm.version()
        models = svc.llm.list_models()
    except LLMError as exc:
        st.warning(str(exc))
    else:
        st.success(f"Ollama {version} answers with {len(models)} model(s) installed.")
        if models:
            st.dataframe(
                [{"model": m.name, "size (GB)": round(m.size / 1e9, 2)} for m in models],
                hide_index=True,
                key="status_models",
            )
        else:
            st.warning("No model is installed. Pull one with `ollama pull mistral:7b`.")

with st.container(border=True, key="status_store"):
    st.subheader("Store")
    health = svc.store.health()
    st.write(f"Backend: **{svc.store.backend}** — {svc.store.describe()}")
    if health.get("ok"):
        st.success("The store answers.")
    else:
        st.error(str(health.get("error", "The store does not answer.")))
