"""The Report tab's vulnerability block: CVEs the scan's scripts reported, then feed guesses.

The two are kept apart on purpose: a reported CVE is what a script such as vulners or
ssl-heartbleed said about the port; a guess is a CVE whose affected versions, in an imported
NVD feed, include the service's version, and must be verified. Every cell is plain text.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from feeds import open_feed_store
from feeds.match import guesses
from scanner.views import ReportView
from scanner.vulns import by_score
from store.base import StoreError

REPORTED_COLUMNS = ("address", "port", "cve", "cvss", "exploit", "state", "source", "evidence")
GUESS_COLUMNS = ("address", "port", "cve", "cvss", "known_exploited", "note", "matched", "service")


def _shown(ports_df: pd.DataFrame) -> set[tuple[str, int, str]]:
    cols = ports_df[["address", "port", "protocol"]].astype({"protocol": str})
    return {(a, int(p), proto) for a, p, proto in cols.itertuples(index=False)}


def reported_frame(view: ReportView, ports_df: pd.DataFrame) -> pd.DataFrame:
    """One row per reported CVE of the shown ports, each port's highest score first."""
    shown = _shown(ports_df)
    rows = [
        (h.address, p.label, f.id, f.cvss, f.exploit, f.state, f.source, f.evidence)
        for h in view.report.hosts
        for p in h.ports
        if p.cves and (h.address, p.port, p.protocol) in shown
        for f in by_score(p.cves)
    ]
    return pd.DataFrame.from_records(rows, columns=list(REPORTED_COLUMNS))


def guess_frame(view: ReportView, ports_df: pd.DataFrame) -> pd.DataFrame | None:
    """One row per feed guess of the shown ports, or None when no feed was imported."""
    store = open_feed_store(ui.get_services().config)
    try:
        if not store.imports():
            return None
        found = guesses(store, view.report)
    finally:
        store.close()
    shown = _shown(ports_df)
    rows = [
        (addr, f"{port}/{proto}", g.cve_id, g.cvss, g.known_exploited, g.note, g.matched, g.service)
        for (addr, port, proto), gs in found.items()
        if (addr, port, proto) in shown
        for g in gs
    ]
    return pd.DataFrame.from_records(rows, columns=list(GUESS_COLUMNS))


def vulnerabilities(view: ReportView, ports_df: pd.DataFrame) -> None:
    """Reported CVEs per port (by score, the script as source), then the feeds' guesses."""
    st.subheader("Vulnerabilities reported by the scan")
    reported = reported_frame(view, ports_df)
    if reported.empty:
        st.caption(
            "No CVE reported by the scan's scripts on these ports (vulners, vulscan and the "
            "vuln-category scripts report them)."
        )
    else:
        st.dataframe(
            reported,
            hide_index=True,
            key="cves_table",
            column_config={
                "cvss": st.column_config.NumberColumn("CVSS", format="%.1f"),
                "source": st.column_config.TextColumn("source (script)"),
            },
        )
    st.subheader("Version guesses from offline feeds — verify")
    try:
        found = guess_frame(view, ports_df)
    except StoreError as exc:
        st.error(f"The offline feeds could not be read: {exc}")
        return
    if found is None:
        st.caption("No offline feed imported: python -m scanner feeds import FILE (NVD 2.0, KEV).")
    elif found.empty:
        st.caption("No imported CVE's affected versions include these ports' service versions.")
    else:
        st.caption(
            "CVEs whose affected versions include the version nmap guessed for the service. "
            "nmap's version detection can be wrong and backported fixes keep version numbers: "
            "verify each before acting."
        )
        st.dataframe(
            found,
            hide_index=True,
            key="cve_guesses_table",
            column_config={"cvss": st.column_config.NumberColumn("CVSS", format="%.1f")},
        )
