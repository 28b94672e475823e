"""The Reports page's blocks: the import expander and the Report, Diff and Export tab bodies."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

import actions
import ui
from auth import Forbidden
from reporting.pdf import render_pdf
from scanner import export
from scanner.diff import ReportDiff, default_base, diff_reports, is_older
from scanner.errors import ImportRefused
from scanner.models import Report, ReportSummary
from scanner.parser import MAX_IMPORT_BYTES
from scanner.risk import LEVELS
from scanner.views import FilterError, PortFilter, ReportView, diff_frames, parse_port_filter
from store.base import Store, StoreError
from store.records import Summary
from widgets import severity, vulns
from widgets import summary as summary_blocks

PAGE_ROWS = 500
SCRIPT_LIMIT = 40
HOST_ORDER = (
    "address",
    "hostnames",
    "status",
    "os",
    "open_ports",
    "risk",
    "risk_reason",
    "mac",
    "vendor",
)
PORT_ORDER = (
    "address",
    "port",
    "protocol",
    "state",
    "service",
    "risk",
    "risk_reason",
    "product",
    "version",
    "extrainfo",
    "cpe",
    "reason",
    "scripts",
)
WHY = {"risk_reason": st.column_config.TextColumn("why", width="large")}
# Wide enough for the longest metric label ("Critical / high ports") at the default font.
METRIC_PX = 180


# Both caches live here, at module level, so every session and rerun shares them.
@st.cache_resource(max_entries=4, show_spinner="Loading the report…")
def load_view(store_key: str, report_id: str) -> ReportView:
    """The report and its tables, built once per report id and kept for the next reruns."""
    return ReportView.build(ui.get_services().store.get_report(report_id))


@st.cache_resource(max_entries=8, show_spinner="Comparing…")
def load_diff(store_key: str, old_id: str, new_id: str) -> ReportDiff:
    """The diff of two reports, computed once per pair."""
    return diff_reports(load_view(store_key, old_id).report, load_view(store_key, new_id).report)


def open_page(page: str, **params: str) -> None:
    """Go to another page with its picker preselected by the address (``?report=ID``)."""
    st.switch_page(ui.PAGE_DIR / page, query_params=params)


def report_actions(report_id: str) -> None:
    """Summarize this, Compare models on this and Diff against…, for the report shown."""
    row = st.container(horizontal=True, gap="small", key="report_actions")
    if row.button("Summarize this", key="go_summarize", icon=":material/summarize:"):
        open_page("summarize.py", report=report_id)
    if row.button("Compare models on this", key="go_compare", icon=":material/compare:"):
        open_page("compare.py", report=report_id)
    row.button(
        "Diff against…",
        key="go_diff",
        icon=":material/difference:",
        on_click=st.session_state.__setitem__,
        args=("report_view", "Diff"),
        help="Opens the Diff tab with the previous scan of the same targets picked.",
    )


# -- import ----------------------------------------------------------------------------------------
def import_expander(store: Store, history: list[ReportSummary]) -> list[ReportSummary]:
    """Import each new upload once, say how each went, and return the report list (re-read)."""
    if not ui.can("import"):
        return history
    with st.expander("Import nmap XML", expanded=not history):
        uploads = st.file_uploader(
            "nmap XML files (-oX output of nmap 5.x to 7.x)",
            type=["xml"],
            accept_multiple_files=True,
            key="import_files",
            max_upload_size=MAX_IMPORT_BYTES // (1024 * 1024),
        )
        done: dict[str, tuple[str, str]] = st.session_state.setdefault("imported_files", {})
        for up in uploads or []:
            if up.file_id not in done:
                done[up.file_id] = _import_one(store, up)
            kind, msg = done[up.file_id]
            text = ui.escape_md(f"{up.name}: {msg}")
            {"ok": st.success, "partial": st.warning, "refused": st.error}[kind](text)
        if uploads:
            history = ui.last_good("reports", store.list_reports, "the report list")
    return history


def _import_one(store: Store, up: UploadedFile) -> tuple[str, str]:
    """Store one uploaded file; returns how it went ("ok", "partial" or "refused") and why."""
    try:
        with st.spinner(f"Importing {ui.escape_md(up.name)}…"):
            rep = actions.import_report(ui.get_services(), ui.identity(), up.getvalue(), up.name)
    except (ImportRefused, Forbidden) as exc:
        return ("refused", str(exc))
    except StoreError as exc:
        return ("refused", f"not saved: {exc}")
    st.session_state["report_pick"] = rep.id
    msg = f"imported as {rep.id}: {rep.hosts_up} hosts up, {rep.open_port_count} open"
    return ("ok" if rep.complete else "partial", msg + f". {rep.note}")


# -- one report ------------------------------------------------------------------------------------
def report_tab(store: Store, view: ReportView) -> None:
    """The Report tab: header and saved summaries, charts, filters, hosts, ports, script output."""
    report_header(store, view)
    pf = report_filters(view)
    show_down = st.session_state.get("filter_down", False)
    hosts_df = shown_hosts(view, pf, show_down)
    ports_df = shown_ports(view, pf, show_down)
    report_charts(hosts_df, ports_df)
    hosts_table(view, hosts_df)
    ports_table(view, ports_df)
    vulns.vulnerabilities(view, ports_df)
    script_output(view, pf, ports_df)


def report_header(store: Store, view: ReportView) -> None:
    """The report's metrics, provenance, nmap arguments, saved summaries and timeout warning."""
    report = view.report
    if not report.complete:
        st.warning(f"Incomplete report: {ui.escape_md(report.note)}")
    # A wrapping row of fixed-width metrics: side by side when wide, two a line when narrow.
    row = st.container(horizontal=True, gap="small", key="report_metrics")
    row.metric("Hosts up", f"{report.hosts_up} / {len(report.hosts)}", width=METRIC_PX)
    row.metric("Open ports", report.open_port_count, width=METRIC_PX)
    risk_counts = view.risk_counts()
    critical_high = risk_counts["critical"] + risk_counts["high"]
    row.metric("Critical / high ports", critical_high, width=METRIC_PX)
    timed_out = int(view.hosts["timed_out"].sum())
    row.metric("Hosts timed out", timed_out, width=METRIC_PX)
    what = ui.escape_md(report.profile or report.source)
    st.caption(
        f"nmap {ui.escape_md(report.nmap_version or '?')} · started {ui.when(report.started_at)}"
        f" · finished {ui.when(report.finished_at)} · {what}"
    )
    if report.args:
        st.code(report.args, language="text")
    saved = ui.last_good(
        f"summaries:{report.id}",
        lambda: store.list_summaries(report.id),
        "the saved summaries",
    )
    if saved:
        with st.expander(f"Saved executive summaries ({len(saved)})"):
            for s in saved:
                st.caption(
                    f"{ui.escape_md(s.model)} · {ui.escape_md(s.audience)} · "
                    f"{ui.escape_md(s.status)} · {ui.when(s.created_at)}"
                )
                summary_blocks.flagged(store, s, f"report_summary_{s.id}")
    if timed_out:
        st.warning(
            f"{timed_out} host(s) timed out: their open ports are unknown, not absent. "
            "Rescan them with a longer host timeout."
        )


def report_charts(hosts_df: pd.DataFrame, ports_df: pd.DataFrame) -> None:
    """Bars coloured by risk (open ports by service, hosts by risk, most common open ports) and
    a host × port grid, all drawn from the filtered rows."""
    st.subheader("At a glance")
    charts = st.container(horizontal=True, gap="medium", key="report_charts")
    panels = (
        ("Open ports by service", severity.by_service(ports_df), "service", "open ports", None),
        ("Hosts by risk", severity.hosts_by_level(hosts_df), "risk", "hosts", LEVELS),
        ("Most common open ports", severity.by_port(ports_df), "port", "hosts", None),
    )
    for i, (title, data, category, count, order) in enumerate(panels):
        # A fixed width, so that on a narrow screen the charts wrap instead of squeezing.
        with charts.container(key=f"chart_{i}", width=severity.CHART_PX):
            st.markdown(f"**{title}**")
            severity.bars_or_note(data, category, count, count, f"bars_{i}", order)
    with st.expander("Host × port grid (open ports, coloured by risk)", expanded=True):
        severity.heat_map(ports_df[ports_df["state"].astype(str) == "open"], key="heat_map")


def report_filters(view: ReportView) -> PortFilter:
    """The host, port, service, state and risk filters, read into one PortFilter."""
    st.subheader("Filters")
    # Each filter is in the address (?filter_host=...), so a reload or a shared link keeps it.
    # A wrapping row: five filters side by side on a wide screen, two or three a line on a
    # narrow one, each wide enough to read what was picked.
    row = st.container(horizontal=True, gap="small", key="report_filters")
    host_text = row.text_input(
        "Host", key="filter_host", bind="query-params", placeholder="address or name", width=180
    )
    port_text = row.text_input(
        "Port", key="filter_port", bind="query-params", placeholder="22,80 or 1-1024", width=180
    )
    services = row.multiselect(
        "Service", view.services(), key="filter_service", bind="query-params", width=220
    )
    states = row.multiselect(
        "State", view.states(), key="filter_state", bind="query-params", width=180
    )
    risks = row.multiselect("Risk", list(LEVELS), key="filter_risk", bind="query-params", width=180)
    down = int((view.hosts["status"] == "down").sum())
    st.toggle(
        f"Show down hosts ({down})",
        key="filter_down",
        bind="query-params",
        help="Hosts nmap found down have no ports; they are left out of tables, charts and "
        "downloads unless this is on.",
        disabled=not down,
    )
    try:
        port_set = parse_port_filter(port_text)
    except FilterError as exc:
        st.warning(ui.escape_md_keep_code(f"Port filter ignored: {exc}"))
        port_set = frozenset()
    return PortFilter(host_text, port_set, tuple(services), tuple(states), tuple(risks))


def shown_hosts(view: ReportView, pf: PortFilter, show_down: bool) -> pd.DataFrame:
    """The hosts that pass the host text and risk filters, down ones only when asked for."""
    hosts_df = view.filter_hosts(pf.host, pf.risks)
    return hosts_df if show_down else hosts_df[hosts_df["status"] != "down"]


def shown_ports(view: ReportView, pf: PortFilter, show_down: bool) -> pd.DataFrame:
    """The ports that pass the filters, those of down hosts only when asked for."""
    ports_df = view.filter_ports(pf)
    if show_down:
        return ports_df
    down = view.hosts.loc[view.hosts["status"] == "down", "address"]
    return ports_df[~ports_df["address"].isin(set(down))] if len(down) else ports_df


def hosts_table(view: ReportView, hosts_df: pd.DataFrame) -> None:
    """The hosts table (already narrowed by the filters), risk coloured by level."""
    st.subheader("Hosts")
    st.caption(f"{len(hosts_df)} of {len(view.hosts)} hosts; risk reason always shown.")
    st.dataframe(
        severity.risk_badges(hosts_df.head(PAGE_ROWS).drop(columns=["risk_rank"])),
        hide_index=True,
        key="hosts_table",
        column_order=HOST_ORDER,
        column_config=WHY,
    )


def ports_table(view: ReportView, ports_df: pd.DataFrame) -> None:
    """The filtered ports table, a page at a time behind its toggle, risk coloured by level."""
    st.subheader("Ports")
    show_ports = st.toggle("Show the ports table", value=True, key="show_ports")
    pages = max(1, -(-len(ports_df) // PAGE_ROWS))
    if show_ports:
        page = 1
        if pages > 1:
            page = int(
                st.number_input(
                    f"Page (of {pages}, {PAGE_ROWS} rows each)",
                    min_value=1,
                    max_value=pages,
                    value=1,
                    key="ports_page",
                )
            )
        st.caption(f"{len(ports_df)} of {len(view.ports)} ports match.")
        start = (page - 1) * PAGE_ROWS
        st.dataframe(
            severity.risk_badges(
                ports_df.iloc[start : start + PAGE_ROWS].drop(columns=["risk_rank"])
            ),
            hide_index=True,
            key="ports_table",
            column_order=PORT_ORDER,
            column_config=WHY,
        )


def script_output(view: ReportView, pf: PortFilter, ports_df: pd.DataFrame) -> None:
    """NSE script output for the filtered rows (a sample when unfiltered), shown as plain text."""
    st.subheader("Script output")
    # Unfiltered, show a sample; once narrowed (say to one host), show all of it.
    limit = SCRIPT_LIMIT if pf.empty else 10 * SCRIPT_LIMIT
    scripts, total = view.scripts(ports_df if not pf.empty else view.ports, limit=limit)
    if not total:
        st.caption("No NSE script output for these hosts and ports.")
    elif total > len(scripts):
        st.caption(f"Showing {len(scripts)} of {total} script outputs; filter to see others.")
    for h, p, sid, output in scripts:
        where = f"{h.address} {p.label}" if p is not None else f"{h.address} (host script)"
        st.markdown(f"**{ui.escape_md(where)}** · {ui.escape_md(sid)}")
        st.code(output, language="text")


# -- diff ------------------------------------------------------------------------------------------
def diff_tab(store: Store, store_key: str, history: list[ReportSummary], picked: str) -> None:
    """The Diff tab: two report pickers (defaulting to the previous scan) and what changed."""
    by_id = {r.id: r for r in history}
    all_ids = [r.id for r in history]
    base = ui.last_good(
        f"base:{picked}", lambda: default_base(store, by_id[picked]), "the default base"
    )
    older = [r.id for r in history if is_older(r, by_id[picked])]
    default_old = base.id if base else (older[0] if older else all_ids[-1])
    if st.session_state.get("diff_for") != picked:
        st.session_state["diff_for"] = picked
        st.session_state["diff_new"] = picked
        st.session_state["diff_old"] = default_old
    # One above the other, full width: a report's label ends with its id, which must show.
    old_id = st.selectbox(
        "Older report", all_ids, key="diff_old", format_func=lambda i: ui.report_label(by_id[i])
    )
    new_id = st.selectbox(
        "Newer report", all_ids, key="diff_new", format_func=lambda i: ui.report_label(by_id[i])
    )
    if base is None:
        st.caption("No earlier scan of the same targets; the previous report is the default.")
    if old_id == new_id:
        st.info("Pick two different reports to compare.")
        return
    try:
        d = load_diff(store_key, old_id, new_id)
    except StoreError as exc:
        st.error(ui.escape_md_keep_code(f"The reports could not be read: {exc}"))
        st.stop()
    diff_summary(d)


def diff_summary(d: ReportDiff) -> None:
    """Counts of what changed between two reports, then a table per kind of change."""
    row = st.container(horizontal=True, gap="small", key="diff_metrics")
    row.metric("New hosts", len(d.new_hosts), width=METRIC_PX)
    row.metric("Gone hosts", len(d.gone_hosts), width=METRIC_PX)
    row.metric("Opened ports", len(d.opened), width=METRIC_PX)
    row.metric("Closed ports", len(d.closed), width=METRIC_PX)
    row.metric("Changed services", len(d.changed), width=METRIC_PX)
    if d.newly_scanned_open or d.not_rescanned:
        st.info(
            f"{len(d.newly_scanned_open)} open port(s) the earlier scan never probed, and "
            f"{len(d.not_rescanned)} open before that the later scan never probed: neither "
            "counts as opened or closed (tables below)."
        )
    if d.empty:
        st.success("No changes between these two reports.")
    if d.uncertain:
        st.warning(
            f"{len(d.uncertain)} host(s) timed out in one of the scans; their ports were "
            "not compared: " + ui.escape_md(" ".join(d.uncertain[:20]))
        )
    for title, frame in diff_frames(d, limit=PAGE_ROWS).items():
        if len(frame):
            st.markdown(f"**{title}**")
            st.dataframe(frame, hide_index=True)


# -- export and delete -----------------------------------------------------------------------------
def export_tab(store: Store, report: Report) -> None:
    """The Export and delete tab: download buttons, then a delete that asks for confirmation."""
    downloads_row(store, report)
    st.divider()
    delete_report(store, report)


def downloads_row(store: Store, report: Report) -> None:
    """One download button per format; each file is built only when its button is clicked."""

    def _summaries() -> list[Summary]:
        return store.list_summaries(report.id)

    def _documents() -> tuple[list[Summary], dict[str, Report]]:
        """The saved summaries and the earlier reports their diffs were checked against."""
        saved = _summaries()
        bases: dict[str, Report] = {}
        for base_id in {s.base_report_id for s in saved if s.base_report_id}:
            try:
                bases[base_id] = store.get_report(base_id)
            except StoreError:
                continue  # gone or unreadable: the check saved with the summary stands in
        return saved, bases

    show_down = bool(st.session_state.get("filter_down", False))
    shown = report if show_down else export.without_down_hosts(report)
    st.caption(
        "Files are built when you click, from the saved report and its summaries"
        + ("." if show_down else "; hosts nmap found down are left out (Show down hosts).")
    )
    downloads: tuple[tuple[str, str, str, str, Callable[[], str | bytes]], ...] = (
        ("Hosts CSV", "dl_hosts_csv", "-hosts.csv", "text/csv", lambda: export.hosts_csv(shown)),
        ("Ports CSV", "dl_ports_csv", "-ports.csv", "text/csv", lambda: export.ports_csv(shown)),
        (
            "JSON",
            "dl_json",
            ".json",
            "application/json",
            lambda: export.report_json(shown, _summaries()),
        ),
        (
            "Markdown",
            "dl_md",
            ".md",
            "text/markdown",
            lambda: export.report_markdown(shown, *_documents()),
        ),
        (
            "HTML",
            "dl_html",
            ".html",
            "text/html",
            lambda: export.report_html(shown, *_documents()),
        ),
        (
            "PDF",
            "dl_pdf",
            ".pdf",
            "application/pdf",
            lambda: render_pdf(shown, *_documents()),
        ),
    )
    svc, who = ui.get_services(), ui.identity()

    def audited(what: str, make: Callable[[], str | bytes]) -> Callable[[], str | bytes]:
        def build() -> str | bytes:
            actions.record_export(svc, who, what, report.id)  # Forbidden: no file at all
            return make()

        return build

    for column, (text, key, suffix, mime, make) in zip(
        st.columns(len(downloads)), downloads, strict=True
    ):
        column.download_button(
            text, audited(text, make), file_name=report.id + suffix, mime=mime, key=key
        )


def delete_report(store: Store, report: Report) -> None:
    """Delete the report after a confirming second click, then forget it and its cached tables."""
    if not ui.can("delete"):
        return
    if st.button("Delete this report…", key="delete_report"):
        st.session_state["pending_delete"] = report.id
    if st.session_state.get("pending_delete") == report.id:
        st.warning(f"Delete report {report.id} and its saved summaries? This cannot be undone.")
        k1, k2 = st.columns(2)
        if k1.button("Yes, delete it", key="delete_confirm", type="primary"):
            try:
                actions.delete_report(ui.get_services(), ui.identity(), report.id)
            except (StoreError, Forbidden) as exc:
                st.error(ui.escape_md_keep_code(f"Not deleted: {exc}"))
            else:
                st.session_state.pop("pending_delete", None)
                st.session_state.pop("report_pick", None)
                load_view.clear()
                load_diff.clear()
                st.session_state["deleted_report"] = report.id
                st.rerun()
        if k2.button("Cancel", key="delete_cancel"):
            st.session_state.pop("pending_delete", None)
            st.rerun()
    if st.session_state.get("deleted_report"):
        st.success(f"Deleted report {st.session_state.pop('deleted_report')}.")
