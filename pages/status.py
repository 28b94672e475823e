"""System status: is nmap installed, does Ollama answer, where does the store keep data."""

from __future__ import annotations

import streamlit as st

import actions
import ui
from auth import Forbidden
from llm.errors import LLMError
from scanner.nmapbin import find_nmap, install_hint, is_root
from widgets import workers

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

workers.workers_panel(svc.runner)  # only with a broker (SCANSCRIBE_BROKER)

with st.container(border=True, key="status_ollama"):
    st.subheader("Ollama")
    st.caption(f"OLLAMA_HOST = {svc.config.ollama_host}")
    try:
        version = svc.llm.version()
        models = svc.llm.list_models()
    except LLMError as exc:
        st.warning(ui.escape_md_keep_code(str(exc)))
    else:
        st.success(
            f"Ollama {ui.escape_md(str(version))} answers with {len(models)} model(s) installed."
        )
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
    st.markdown(f"Backend: **{svc.store.backend}**")
    st.text(svc.store.describe())
    if health.get("ok"):
        st.success("The store answers.")
    else:
        st.error(ui.escape_md_keep_code(str(health.get("error", "The store does not answer."))))
    pending_of = getattr(svc.store, "pending", None)
    if pending_of is not None:
        pending = pending_of()
        if pending:
            st.warning(
                f"{len(pending)} record(s) are kept locally and wait for Firestore. They are "
                "sent on the next save, at start-up, or now with the button below."
            )
            st.dataframe(
                [
                    {
                        "kind": p.kind,
                        "id": p.doc_id,
                        "attempts": p.attempts,
                        # Parked: Firestore refuses it for good; kept here, not retried.
                        "parked": getattr(p, "parked", False),
                        "error": getattr(p, "error", ""),
                    }
                    for p in pending
                ],
                hide_index=True,
                key="status_pending",
            )
        else:
            st.caption("Nothing is waiting for Firestore.")
        if ui.can("outbox.send") and st.button("Send pending records now", key="sync_outbox"):
            try:
                result = actions.send_outbox(svc, ui.identity())
            except Forbidden as exc:
                st.error(ui.escape_md_keep_code(str(exc)))
                st.stop()
            if result.pending:
                st.error(
                    ui.escape_md_keep_code(
                        f"Sent {result.sent}; {result.pending} still wait. "
                        + (result.error or "Firestore did not answer.")
                    )
                )
            else:
                st.success(f"Sent {result.sent} record(s); nothing is waiting.")
