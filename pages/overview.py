"""Overview: counts, the latest reports and summaries, and a first-run guide."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

import ui
from scanner.history import exposure_trend, latest_per_target_set
from store import StoreError

ui.page_guard()
st.title("ScanScribe")
st.caption("Scan what you are allowed to scan, read what was found, and brief people on it.")

svc = ui.get_services()
try:
    reports = svc.store.list_reports()
    summaries = svc.store.list_summaries()
except StoreError as exc:
    st.error(ui.escape_md_keep_code(f"The store could not be read: {exc}"))
    st.stop()

current = latest_per_target_set(reports)
now = "In the newest report of each set of targets: a host scanned ten times counts once."
c1, c2, c3, c4 = st.columns(4)
c1.metric("Reports", len(reports))
c2.metric("Hosts up", sum(r.hosts_up for r in current), help=now)
c3.metric("Open ports", sum(r.open_ports for r in current), help=now)
c4.metric("Summaries", len(summaries))

if not reports:
    with st.container(border=True, key="first_run"):
        st.subheader("Start here")
        st.markdown(
            "1. Open **System status** and check that nmap and Ollama are ready.\n"
            "2. Open **Scan**, enter a target inside your scope "
            f"(`{', '.join(str(n) for n in svc.config.scope)}`), pick a profile and press Scan.\n"
            "3. Or open **Reports** and import an nmap XML file you already have.\n"
            "4. On a report, press **Summarize** for an executive summary from your local model."
        )
else:
    st.subheader("Latest reports")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "scanned": ui.when(r.scanned_at),
                    "targets": " ".join(r.targets)[:120],
                    "profile / source": r.profile or r.source,
                    "hosts up": r.hosts_up,
                    "open ports": r.open_ports,
                    "summaries": r.summaries,
                    "id": r.id,
                }
                for r in reports[:10]
            ]
        ),
        hide_index=True,
        key="latest_reports",
    )
    if len(reports) > len(current):
        st.subheader("Open ports over time")
        st.caption("Each line is one set of targets scanned more than once; each point a report.")
        trend = exposure_trend(reports, min_reports=2)
        chart = (
            alt.Chart(trend)
            .mark_line(point=True)
            .encode(
                x=alt.X("when:T", title=None),
                y=alt.Y("open ports:Q", scale=alt.Scale(zero=True, nice=True)),
                color=alt.Color("targets:N", legend=alt.Legend(orient="bottom")),
                tooltip=["when:T", "targets:N", "open ports:Q", "hosts up:Q"],
            )
        )
        st.altair_chart(chart, use_container_width=True)

if summaries:
    st.subheader("Latest summaries")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": ui.when(s.created_at),
                    "report": s.report_id,
                    "model": s.model,
                    "audience": s.audience,
                    "status": s.status,
                }
                for s in summaries[:10]
            ]
        ),
        hide_index=True,
        key="latest_summaries",
    )
