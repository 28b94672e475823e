"""Summarize: stream a summary of a report (or of a diff) from a local Ollama model."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

import ui
from llm.errors import LLMError
from llm.factcheck import FactCheck, check
from llm.mdsafe import MarkdownEscaper, escape_markdown, highlight
from llm.prompt import AUDIENCES
from llm.summarize import SummaryRun, prepare, recover_summaries
from scanner.models import Report
from store.base import Store, StoreError
from store.records import Summary

STATUS_NOTES = {
    "streaming": "Streaming…",
    "complete": "Complete.",
    "stopped": "Stopped — the text that had arrived is kept.",
    "failed": "Incomplete — the answer stopped part-way; the text that arrived is kept.",
    "interrupted": "Incomplete — the program stopped while this summary was streaming.",
}

ui.page_guard()
st.title("Summarize")
svc = ui.get_services()
ss = st.session_state


@st.cache_resource(show_spinner=False)
def _recover_once(db_key: str, _store: Store) -> list[str]:
    """Mark summaries left streaming by a dead process as interrupted, once per store."""
    return recover_summaries(_store)


_recover_once(svc.store.describe(), svc.store)


def _launch(params: dict[str, Any]) -> None:
    ss["sum_params"] = params
    ss.pop("sum_failure", None)
    try:
        run = prepare(
            svc.store,
            svc.llm,
            params["report_id"],
            params["model"],
            params["audience"],
            base_report_id=params["base"],
            owner=svc.config.user,
        ).start()
    except (LLMError, StoreError, ValueError) as exc:
        ss["sum_failure"] = str(exc)
        return
    ss["sum_run"] = run


def _start() -> None:
    diff = ss.get("sum_mode") == "diff"
    _launch(
        {
            "report_id": ss.get("sum_report"),
            "base": ss.get("sum_base") if diff else None,
            "model": ss.get("sum_model"),
            "audience": ss.get("sum_audience", "executive"),
        }
    )


def _retry() -> None:
    if "sum_params" in ss:
        _launch(ss["sum_params"])


def _stop() -> None:
    run: SummaryRun | None = ss.get("sum_run")
    if run is not None:
        run.stop()


def _metrics(metrics: dict[str, Any]) -> None:
    def num(key: str, fmt: str) -> str:
        value = metrics.get(key)
        return fmt.format(value) if isinstance(value, int | float) else "—"

    cols = st.columns(6)
    cols[0].metric("Time to first token", num("ttft_s", "{:.2f} s"))
    cols[1].metric("Tokens/s", num("tokens_per_s", "{:.1f}"))
    cols[2].metric("Prompt tokens", num("prompt_tokens", "{:d}"))
    cols[3].metric("Output tokens", num("output_tokens", "{:d}"))
    cols[4].metric("Load time", num("load_s", "{:.2f} s"))
    cols[5].metric("Total time", num("total_s", "{:.1f} s"))


def _reports_of(s: Summary) -> list[Report]:
    ids = [i for i in (s.base_report_id, s.report_id) if i]
    try:
        return [svc.store.get_report(i) for i in ids]
    except StoreError:
        return []


def _show_summary(s: Summary, fc: FactCheck | None, key: str) -> str:
    """Render a finished summary: status, highlighted text, reasoning, metrics, fact check."""
    note = STATUS_NOTES.get(s.status, s.status)
    if s.status == "complete":
        st.caption(note)
    elif s.status in ("stopped", "streaming"):
        st.info(note)
    else:
        st.error(note + (f" {s.error}" if s.error else ""))
    is_pending = getattr(svc.store, "is_pending", None)
    if is_pending is not None and is_pending("summary", s.id):
        st.warning(
            "Saved locally: Firestore did not answer. This summary is sent when Firestore "
            "answers again (next save, start-up, or System status)."
        )
    if fc is None:
        fc = check(s.text, *_reports_of(s))
    with st.container(border=True, key=f"{key}_text"):
        if s.text:
            st.markdown(highlight(s.text, fc.unsupported_spans()))
        else:
            st.caption("No text arrived.")
    if s.thinking:
        with st.expander("Model reasoning (kept apart from the summary)", expanded=False):
            st.text(s.thinking)
    _metrics(s.metrics)
    if fc.unsupported:
        st.warning(
            f"{len(fc.unsupported)} claim(s) are not in the scan data — verify them before "
            "acting on this summary. They are highlighted in the text."
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {"kind": c.kind, "value": c.value, "check": "not in the scan data — verify"}
                    for c in fc.unsupported
                ]
            ),
            hide_index=True,
            key=f"{key}_unsupported",
        )
    elif fc.claims:
        st.success(
            f"Fact check: all {len(fc.claims)} host, port and CVE claims are in the scan data."
        )
    else:
        st.caption("Fact check: the summary names no host, port or CVE id.")
    return note


reports = ui.last_good("reports", svc.store.list_reports, "the report list")
if not reports:
    st.info("No report yet. Run a scan on the Scan page, or import nmap XML on the Reports page.")
    st.stop()


left, right = st.columns(2)
with left:
    mode, report_id, _ = ui.pick_report_or_diff(
        svc.store, reports, "sum", "Changes since an earlier report"
    )
with right:
    models: list[str] = []
    try:
        models = [m.name for m in svc.llm.list_models()]
    except LLMError as exc:
        st.error(str(exc))
    else:
        if not models:
            st.warning(
                "No model is installed in Ollama. Install one with `ollama pull mistral:7b`."
            )
    if models:
        st.selectbox("Model", models, key="sum_model")
    st.radio(
        "Audience",
        AUDIENCES,
        key="sum_audience",
        horizontal=True,
        format_func=lambda a: ui.AUDIENCE_LABELS[a],
    )

run: SummaryRun | None = ss.get("sum_run")
busy = run is not None and not run.finished
diff_ready = mode != "diff" or bool(ss.get("sum_base"))
st.button(
    "Summarize",
    key="sum_go",
    type="primary",
    on_click=_start,
    disabled=busy or not models or not diff_ready,
)

if "sum_failure" in ss:
    st.error(ss["sum_failure"])
    st.button("Retry", key="sum_retry", on_click=_retry)
elif run is not None:
    s = run.summary
    with st.container(border=True, key="sum_current"):
        what = f"changes since {s.base_report_id}" if s.base_report_id else f"report {s.report_id}"
        st.caption(escape_markdown(f"{s.model} · {s.audience} · {what} · summary {s.id}"))
        text_slot = st.empty()
        if not run.finished:
            stop_slot = st.empty()
            stop_slot.button("Stop", key="sum_stop", on_click=_stop)
            with text_slot:
                st.write_stream(MarkdownEscaper().wrap(run.job.follow()))
            run.wait()
            # Widgets above were drawn while the stream ran (Summarize disabled): draw again.
            st.rerun()
        _show_summary(run.summary, run.fact_check, "sum_result")
        if run.summary.status in ("failed", "stopped"):
            st.button("Retry", key="sum_retry", on_click=_retry)

st.subheader("Saved summaries of this report")
saved = ui.last_good(
    f"summaries:{report_id}",
    lambda: svc.store.list_summaries(report_id),
    "the saved summaries",
)
if not saved:
    st.caption("None yet.")
else:
    table = st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": x.id,
                    "created": ui.when(x.created_at),
                    "model": x.model,
                    "audience": x.audience,
                    "of": f"diff since {x.base_report_id}" if x.base_report_id else "report",
                    "status": x.status,
                    "not in scan data": len(x.fact_check.get("unsupported", ())),
                }
                for x in saved
            ]
        ),
        hide_index=True,
        key="sum_saved",
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = table.selection.rows if table is not None else []
    pick = (
        saved[rows[0]].id
        if rows
        else st.selectbox(
            "Open a saved summary (or select its row)",
            [x.id for x in saved],
            index=None,
            key="sum_saved_pick",
        )
    )
    if pick is not None:
        chosen = next(x for x in saved if x.id == pick)
        with st.container(border=True, key="sum_saved_view"):
            st.caption(
                escape_markdown(
                    f"{chosen.model} · {chosen.audience} · {ui.when(chosen.created_at)}"
                )
            )
            _show_summary(chosen, None, "sum_saved_view")
