"""Blocks for scanner workers: the Scan page's site picker and System status's worker list.

Both show nothing unless a broker is configured (the runner then lists sites and heartbeats).
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

import ui
from store.base import StoreError

AUTO = ""


def site_picker(runner: Any) -> str:
    """A site selectbox when scans go to workers; ``""`` lets the targets choose the site."""
    sites_of = getattr(runner, "sites", None)
    if sites_of is None:
        return AUTO
    try:
        sites = sites_of()
    except StoreError as exc:
        st.warning(ui.escape_md_keep_code(f"The workers' heartbeats cannot be read: {exc}"))
        sites = []
    choice: str = st.selectbox(
        "Site",
        [AUTO, *sites],
        key="scan_site",
        format_func=lambda s: s or "Any site whose scope holds every target",
        help="Scans run on the workers of this site; each worker checks its own scope again.",
    )
    return choice


def workers_panel(runner: Any) -> None:
    """The broker and each worker's last heartbeat with its age (System status)."""
    beats_of = getattr(runner, "heartbeats", None)
    if beats_of is None:
        return
    with st.container(border=True, key="status_workers"):
        st.subheader("Scanner workers")
        st.caption(f"Broker: {runner.broker.describe()}")
        for warning in runner.warnings():
            st.warning(ui.escape_md(warning))
        try:
            beats = beats_of()
        except StoreError as exc:
            st.error(ui.escape_md_keep_code(f"The workers' heartbeats cannot be read: {exc}"))
            return
        if not beats:
            st.warning(
                "No worker has sent a heartbeat. Start one per site with "
                "`python -m scanner worker --site NAME`."
            )
            return
        now = time.time()
        st.dataframe(
            [
                {
                    "site": b.site,
                    "worker": b.worker,
                    "host": b.host,
                    "scope": ", ".join(b.scope),
                    "nmap": b.nmap_version,
                    "root": b.root,
                    "running": b.running,
                    "heartbeat age (s)": round(b.age(now), 1),
                    "live": b.live(now),
                }
                for b in beats
            ],
            hide_index=True,
            key="status_worker_table",
        )
