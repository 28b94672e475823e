"""The Summarize page's blocks: the model picker, the live summary, a finished one, saved ones.

``flagged`` shows a saved summary with its fact check; every page that shows one calls it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

import actions
import ui
from llm.client import OllamaGateway
from llm.errors import LLMError
from llm.factcheck import FactCheck
from llm.mdsafe import MarkdownEscaper, escape_markdown, highlight
from llm.prompt import left_out_note
from llm.summarize import SummaryRun, recover_summaries
from scanner.export import VERIFY, fact_check_note, summary_fact_check
from scanner.models import Report
from services import Services
from store.base import NotFound, Store, StoreError
from store.records import Summary

STATUS_NOTES = {
    "streaming": "Streaming…",
    "complete": "Complete.",
    "stopped": "Stopped — the text that had arrived is kept.",
    "failed": "Incomplete — the answer stopped part-way; the text that arrived is kept.",
    "interrupted": "Incomplete — the program stopped while this summary was streaming.",
}


# At module level, so every session and rerun shares it.
@st.cache_resource(show_spinner=False)
def recover_once(db_key: str, _store: Store) -> list[str]:
    """Mark summaries left streaming by a dead process as interrupted, once per store."""
    return recover_summaries(_store)


# -- start, retry, stop ----------------------------------------------------------------------------
def _launch(svc: Services, params: dict[str, Any]) -> None:
    """Start a summary with these parameters, or keep why it could not start."""
    ss = st.session_state
    ss["sum_params"] = params
    who = ui.identity()
    run = ui.start_run(
        "sum_failure",
        lambda: actions.start_summary(
            svc,
            who,
            params["report_id"],
            params["model"],
            params["audience"],
            base_report_id=params["base"],
        ),
    )
    if run is not None:
        ss["sum_run"] = run


def start(svc: Services) -> None:
    """Summarize button callback: summarize the report (or diff), model and audience picked."""
    ss = st.session_state
    diff = ss.get("sum_mode") == "diff"
    _launch(
        svc,
        {
            "report_id": ss.get("sum_report"),
            "base": ss.get("sum_base") if diff else None,
            "model": ss.get("sum_model"),
            "audience": ss.get("sum_audience", "executive"),
        },
    )


def _retry(svc: Services) -> None:
    """Retry button callback: start the last summary again with the same parameters."""
    if "sum_params" in st.session_state:
        _launch(svc, st.session_state["sum_params"])


def _stop() -> None:
    """Stop button callback: stop the running summary; the text that arrived is kept."""
    run: SummaryRun | None = st.session_state.get("sum_run")
    if run is not None:
        run.stop()


def retry_button(svc: Services) -> None:
    """The Retry button, which starts the last summary again."""
    st.button("Retry", key="sum_retry", on_click=_retry, args=(svc,))


# -- widgets ---------------------------------------------------------------------------------------
def model_select(llm: OllamaGateway) -> list[str]:
    """The model picker, or why there is nothing to pick; returns the installed model names."""
    models: list[str] = []
    try:
        models = [m.name for m in llm.list_models()]
    except LLMError as exc:
        st.error(ui.escape_md_keep_code(str(exc)))
    else:
        if not models:
            st.warning(
                "No model is installed in Ollama. Install one with `ollama pull mistral:7b`."
            )
    if models:
        st.selectbox("Model", models, key="sum_model")
    return models


def _until_first_words(run: SummaryRun, slot: Any) -> None:
    """Say what the model is doing until its first words arrive; each update also lets a Stop
    click end the wait at once."""
    for note in run.job.waiting_notes(run.summary.model):
        slot.caption(escape_markdown(note))
    slot.empty()


def current(svc: Services, run: SummaryRun) -> None:
    """This session's summary: streamed with a Stop button while it runs, then shown in full."""
    s = run.summary
    with st.container(border=True, key="sum_current"):
        what = s.compares or (
            f"changes since {s.base_report_id}" if s.base_report_id else f"report {s.report_id}"
        )
        st.caption(escape_markdown(f"{s.model} · {s.audience} · {what} · summary {s.id}"))
        wait_slot = st.empty()
        text_slot = st.empty()
        if not run.finished:
            stop_slot = st.empty()
            stop_slot.button("Stop", key="sum_stop", on_click=_stop)
            _until_first_words(run, wait_slot)
            with text_slot:
                st.write_stream(MarkdownEscaper().wrap(run.job.follow()))
            run.wait()
            # Widgets above were drawn while the stream ran (Summarize disabled): draw again.
            st.rerun()
        show(svc.store, run.summary, run.fact_check, "sum_result")
        if run.summary.status in ("failed", "stopped"):
            retry_button(svc)


def saved_list(store: Store, saved: list[Summary]) -> str | None:
    """The report's saved summaries as a table; the selected (or picked) one opens below it.

    Returns the id of the one open, for the page's address (``?summary=ID``).
    """
    if not saved:
        st.caption("None yet.")
        return None
    if st.session_state.get("sum_saved_pick") not in {x.id for x in saved}:
        st.session_state.pop("sum_saved_pick", None)  # left from another report
    pick = _saved_pick(saved)
    if pick is not None:
        chosen = next(x for x in saved if x.id == pick)
        with st.container(border=True, key="sum_saved_view"):
            st.caption(
                escape_markdown(
                    f"{chosen.model} · {chosen.audience} · {ui.when(chosen.created_at)}"
                    + (f" · {chosen.compares}" if chosen.compares else "")
                )
            )
            show(store, chosen, None, "sum_saved_view")
    return pick


def _saved_pick(saved: list[Summary]) -> str | None:
    """The saved summaries table; returns the id of its selected row, else of the one picked."""
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
    if rows:
        return saved[rows[0]].id
    return st.selectbox(
        "Open a saved summary (or select its row)",
        [x.id for x in saved],
        index=None,
        key="sum_saved_pick",
    )


# -- one finished summary --------------------------------------------------------------------------
def show(store: Store, s: Summary, fc: FactCheck | None, key: str) -> None:
    """A finished summary: status, highlighted text, reasoning, metrics, fact check."""
    note = STATUS_NOTES.get(s.status, s.status)
    if s.status == "complete":
        st.caption(note)
    elif s.status in ("stopped", "streaming"):
        st.info(note)
    else:
        st.error(ui.escape_md_keep_code(note + (f" {s.error}" if s.error else "")))
    is_pending = getattr(store, "is_pending", None)
    if is_pending is not None and is_pending("summary", s.id):
        st.warning(
            "Saved locally: Firestore did not answer. This summary is sent when Firestore "
            "answers again (next save, start-up, or System status)."
        )
    flagged(store, s, key, fc)
    if s.thinking:
        with st.expander("Model reasoning (kept apart from the summary)", expanded=False):
            st.text(s.thinking)
    metrics(s.metrics)


def flagged(store: Store, s: Summary, key: str, fc: FactCheck | None = None) -> None:
    """A summary's text with the claims not in the scan data highlighted, then its fact check."""
    if fc is None:
        fc = summary_fact_check(s, _reports_of(store, s))
    with st.container(border=True, key=f"{key}_text"):
        if s.text:
            st.markdown(highlight(s.text, fc.unsupported_spans()))
        else:
            st.caption("No text arrived.")
    left_out = left_out_note(s.options.get("omitted", {}))
    if left_out:
        st.caption(left_out)
    fact_check(fc, key)


def _reports_of(store: Store, s: Summary) -> list[Report]:
    """Those of a summary's reports (the report, a diff's earlier one) that can be read now."""
    found = []
    for report_id in (s.base_report_id, s.report_id):
        try:
            if report_id:
                found.append(store.get_report(report_id))
        except NotFound:
            continue
        except StoreError:
            break  # the store is down: the check saved with the summary stands in
    return found


def metrics(values: dict[str, Any]) -> None:
    """Six metrics of one answer: first-token wait, speed, token counts, load and total time."""

    def num(key: str, fmt: str) -> str:
        value = values.get(key)
        return fmt.format(value) if isinstance(value, int | float) else "—"

    cols = st.columns(6)
    cols[0].metric("Time to first token", num("ttft_s", "{:.2f} s"))
    cols[1].metric("Tokens/s", num("tokens_per_s", "{:.1f}"))
    cols[2].metric("Prompt tokens", num("prompt_tokens", "{:d}"))
    cols[3].metric("Output tokens", num("output_tokens", "{:d}"))
    cols[4].metric("Load time", num("load_s", "{:.2f} s"))
    cols[5].metric("Total time", num("total_s", "{:.1f} s"))


def fact_check(fc: FactCheck, key: str) -> None:
    """The fact check's verdict, and a table of the claims not in the scan data."""
    note = fact_check_note(fc, "highlighted")
    if fc.unsupported:
        st.warning(note)
        st.dataframe(
            pd.DataFrame(
                [{"kind": c.kind, "value": c.value, "check": VERIFY} for c in fc.unsupported]
            ),
            hide_index=True,
            key=f"{key}_unsupported",
        )
    elif fc.claims:
        st.success(note)
    else:
        st.caption(note)
