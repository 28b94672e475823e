"""The Compare page's blocks: the start form, the live answers while they stream, the result."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

import actions
import ui
from auth import Forbidden
from llm.client import ModelInfo
from llm.compare import (
    MAX_MODELS,
    MIN_MODELS,
    TIE,
    ComparisonRun,
    Limits,
    check_capacity,
    check_models,
    is_running,
    limits_from_env,
)
from llm.compare_tables import (
    claim_rows,
    coverage_rows,
    factcheck_rows,
    metrics_rows,
)
from llm.errors import LLMError
from llm.factcheck import check
from llm.mdsafe import escape_markdown, highlight
from llm.prompt import AUDIENCES
from scanner.models import ReportSummary
from services import Services
from store.base import Store, StoreError
from store.records import Comparison
from widgets.severity import LABEL_COLOR

DRAIN_EVERY_S = 0.1
ACTIVE = ("pending", "warming up", "running")
STATUS_NOTES = {
    "complete": "complete",
    "stopped": "stopped — the text that had arrived is kept",
    "failed": "incomplete — the answer stopped part-way",
    "streaming": "interrupted — the program stopped while this answer streamed",
}


# An answer column's width by how many there are: side by side on a wide screen; on a narrow
# one they wrap to a line each instead of shrinking to a few words a line.
ANSWER_PX = {1: 880, 2: 440, 3: 300}
CHART_PX = 300
FORM_PX = 460


def answer_px(count: int) -> int:
    """The width of one answer column when ``count`` answers are shown side by side."""
    return ANSWER_PX.get(count, 200)


# -- start form ------------------------------------------------------------------------------------
def _start(svc: Services, params: dict[str, Any]) -> None:
    """Button callback: start a comparison run and look at it, or keep why it could not start."""
    ss = st.session_state
    who = ui.identity()
    run = ui.start_run(
        "cmp_failure",
        lambda: actions.start_comparison(
            svc,
            who,
            params["report"],
            params["base"],
            params["models"],
            params["audience"],
            warmup=params["warmup"],
        ),
    )
    if run is not None:
        ss["cmp_run"] = run
        ss["cmp_view"] = run.id


def start_form(svc: Services, reports: list[ReportSummary], busy: bool) -> None:
    """Report or diff, audience, models, warm-up and server limits, then the Start button."""
    # Side by side on a wide screen; stacked on a narrow one, where halves would cut the labels.
    row = st.container(horizontal=True, gap="medium", key="cmp_form")
    left, right = row.container(width=FORM_PX), row.container(width=FORM_PX)
    with left:
        mode, report_id, base_id = ui.pick_report_or_diff(
            svc.store, reports, "cmp", "Changes since a report"
        )
        audience = st.radio(
            "Audience",
            AUDIENCES,
            key="cmp_audience",
            horizontal=True,
            format_func=lambda a: ui.AUDIENCE_LABELS[a],
        )
    with right:
        installed: list[ModelInfo] = []
        try:
            installed = svc.llm.list_models()
        except LLMError as exc:
            st.error(ui.escape_md_keep_code(str(exc)))
        names = [m.name for m in installed]
        chosen = st.multiselect(
            f"Models ({MIN_MODELS}–{MAX_MODELS})",
            names,
            key="cmp_models",
            max_selections=MAX_MODELS,
            placeholder="Pick installed models",
        )
        warmup = st.checkbox(
            "Warm up first (load every model before the timed run)",
            key="cmp_warmup",
            help="Load time is always shown apart; warming up keeps it out of the timings.",
        )
        limits = server_limits()
    ready = MIN_MODELS <= len(chosen) <= MAX_MODELS and (mode == "report" or bool(base_id))
    ready, capacity_ok = capacity_check(svc, chosen, installed, limits, ready)
    st.button(
        "Start comparison",
        key="cmp_go",
        type="primary",
        disabled=busy or not ready or not capacity_ok,
        on_click=_start,
        args=(
            svc,
            {
                "report": report_id,
                "base": base_id if mode == "diff" else None,
                "models": chosen,
                "audience": audience,
                "warmup": warmup,
            },
        ),
    )


def server_limits() -> Limits:
    """The Ollama server's limits as the analyst entered them, defaulting to the environment."""
    env = limits_from_env(os.environ)
    with st.expander("Ollama server limits"):
        st.caption(
            "ScanScribe cannot read the Ollama server's settings. Enter them here (or set "
            "them in secrets.toml) to check that the chosen models can run at the same time."
        )
        max_loaded = st.number_input(
            "OLLAMA_MAX_LOADED_MODELS", 0, 64, env.max_loaded or 0, key="cmp_max_loaded"
        )
        parallel = st.number_input(
            "OLLAMA_NUM_PARALLEL", 0, 64, env.num_parallel or 0, key="cmp_parallel"
        )
        memory_gb = st.number_input(
            "Memory for models (GB)",
            0.0,
            4096.0,
            (env.memory_bytes or 0) / 1e9,
            key="cmp_memory_gb",
        )
        st.caption("0 means unknown.")
    return Limits(int(max_loaded) or None, int(parallel) or None, int(memory_gb * 1e9) or None)


def capacity_check(
    svc: Services, chosen: list[str], installed: list[ModelInfo], limits: Limits, ready: bool
) -> tuple[bool, bool]:
    """Check the chosen models can run side by side; returns (ready, capacity ok or overridden)."""
    capacity_ok = True
    if ready:
        try:
            check_models(chosen, installed)
            capacity = check_capacity(svc.llm, chosen, limits)
        except (LLMError, ValueError) as exc:
            st.error(ui.escape_md_keep_code(str(exc)))
            ready = False
        else:
            for note in capacity.notes:
                st.info(escape_markdown(note))
            if not capacity.ok:
                capacity_ok = False
                st.warning(
                    "Ollama cannot serve these models at the same time, so the answers would "
                    "come one after another and the timings would not be comparable:\n\n"
                    + "\n\n".join(f"- {escape_markdown(r)}" for r in capacity.reasons)
                )
                capacity_ok = st.checkbox("Start anyway", key="cmp_anyway")
    elif chosen:
        st.caption(f"Choose {MIN_MODELS} to {MAX_MODELS} models.")
    return ready, capacity_ok


# -- while it runs ---------------------------------------------------------------------------------
def drain(run: ComparisonRun) -> None:
    """Show every model's answer growing in its own column until all of them ended."""
    views = run.views()
    row = st.container(horizontal=True, gap="small", key="cmp_live")
    heads, bodies = [], []
    for i, view in enumerate(views):
        with row.container(border=True, key=f"cmp_live_{i}", width=answer_px(len(views))):
            st.markdown(f"**{escape_markdown(view.model)}**")
            heads.append(st.empty())
            bodies.append(st.empty())
            st.button(
                "Stop",
                key=f"cmp_stop_{i}",
                on_click=run.stop,
                args=(i,),
                disabled=view.phase not in ACTIVE,
            )
    shown = [""] * len(views)
    while True:
        done = run.finished
        for i, view in enumerate(run.views()):
            # A caption every tick keeps the script responsive to Stop clicks between updates.
            thinking = f" · {len(view.thinking)} characters of reasoning" if view.thinking else ""
            heads[i].caption(f"{view.phase} · {len(view.text)} characters{thinking}")
            if view.text != shown[i]:
                bodies[i].markdown(escape_markdown(view.text))
                shown[i] = view.text
        if done:
            break
        run.wait(DRAIN_EVERY_S)


# -- the result ------------------------------------------------------------------------------------
def show(store: Store, comp: Comparison) -> None:
    """A finished (or saved) comparison: answers, metrics, fact checks, coverage, verdict."""
    answers(store, comp)
    scores(comp)
    if ui.can("verdict"):
        verdict(store, comp)
    elif comp.winner:
        st.caption(f"Verdict: {escape_markdown(comp.winner)}")


def answers(store: Store, comp: Comparison) -> None:
    """What was compared, then each model's answer in its own column, unsupported claims marked."""
    what = (
        f"changes from {comp.base_report_id} to {comp.report_id}"
        if comp.base_report_id
        else f"report {comp.report_id}"
    )
    st.caption(
        escape_markdown(f"{comp.id} · {what} · {comp.audience} · {ui.when(comp.created_at)}")
    )
    reports = []
    for rid in (comp.base_report_id, comp.report_id):
        if rid:
            with contextlib.suppress(StoreError):
                reports.append(store.get_report(rid))
    row = st.container(horizontal=True, gap="small", key="cmp_answers")
    for i, r in enumerate(comp.results):
        with row.container(border=True, key=f"cmp_answer_{i}", width=answer_px(len(comp.results))):
            st.markdown(f"**{escape_markdown(r['model'])}**")
            note = STATUS_NOTES.get(r["status"], r["status"])
            if r["status"] == "streaming" and is_running(comp.id):
                note = "still streaming in another session — reopen it in a moment"
            (st.caption if r["status"] == "complete" else st.warning)(note)
            if r.get("error"):
                st.error(escape_markdown(r["error"]))
            fc = check(r["text"], *reports) if reports else None
            if not r["text"]:
                st.caption("No text arrived.")
            elif fc is not None:
                st.markdown(highlight(r["text"], fc.unsupported_spans()))
            else:
                st.markdown(escape_markdown(r["text"]))
            if r.get("thinking"):
                with st.expander("Model reasoning (kept apart)"):
                    st.text(r["thinking"])


def table(rows: list[dict[str, Any]], key: str) -> None:
    """Rows as a table; a value the model did not report shows as a dash, never as None.

    The table draws a missing cell as "None" whatever its display format says, so a column
    with a gap is written out as text; a column without one keeps its numbers.
    """
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        if frame[col].isna().any():
            frame[col] = ["—" if pd.isna(v) else _cell(v) for v in frame[col]]
    st.dataframe(frame, hide_index=True, key=key)


def _cell(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def scores(comp: Comparison) -> None:
    """The metrics, fact-check, claims and coverage tables of a comparison."""
    st.subheader("Metrics")
    st.caption(
        "Load time is shown apart: 'load time in run' is what Ollama spent loading during the "
        "timed answer, 'warm-up load' what it spent before it (with warm-up on)."
    )
    table(metrics_rows(comp), "cmp_metrics")
    score_charts(comp)

    st.subheader("Fact check")
    checks = factcheck_rows(comp)
    table(checks, "cmp_factcheck")
    cut = [c["model"] for c in checks if c["not in the scan"] is None]
    if cut:
        st.caption(
            escape_markdown(
                f"Not scored, the answer is incomplete: {', '.join(cut)}. "
                "Its claims so far are listed below."
            )
        )
    claims = claim_rows(comp)
    if claims:
        table(claims, "cmp_claims")

    st.subheader("Coverage")
    st.caption("Hosts, and open ports rated critical or high, that each answer mentions.")
    table(coverage_rows(comp), "cmp_coverage")


def bars(values: dict[str, float], higher_is_better: bool, fmt: str) -> alt.LayerChart:
    """One labelled bar per model, the best at the top."""
    frame = pd.DataFrame({"model": list(values), "value": list(values.values())})
    y = alt.Y(
        "model:N",
        title=None,
        sort=alt.EncodingSortField(
            "value", order="descending" if higher_is_better else "ascending"
        ),
        axis=alt.Axis(labelLimit=160),
    )
    # Room after the longest bar for its label.
    x = alt.X(
        "value:Q",
        title=None,
        axis=alt.Axis(format=fmt, tickCount=4),
        scale=alt.Scale(domain=[0, float(frame["value"].max()) * 1.25 or 1], nice=False),
    )
    base = alt.Chart(frame).encode(y=y, x=x)
    chart: alt.LayerChart = (
        base.mark_bar().encode(tooltip=["model:N", alt.Tooltip("value:Q", format=fmt)])
        + base.mark_text(align="left", dx=3, fontWeight="bold", color=LABEL_COLOR).encode(
            text=alt.Text("value:Q", format=fmt)
        )
    ).properties(height=alt.Step(26))
    return chart


def score_charts(comp: Comparison) -> None:
    """Speed, first-token wait and claims not in the scan as bars, best first, each labelled.

    A model stopped before its first token has no speed, and an incomplete answer has no
    grounding score: their bars are left out and named, never drawn as a zero.
    """
    speed = {m["model"]: m for m in metrics_rows(comp)}
    checks = {c["model"]: c["not in the scan"] for c in factcheck_rows(comp)}
    panels: tuple[tuple[str, dict[str, Any], bool, str], ...] = (
        (
            "Tokens per second — higher is faster",
            {k: m["tokens/s"] for k, m in speed.items()},
            True,
            ".1f",
        ),
        (
            "Time to first token (s) — lower is better",
            {k: m["time to first token (s)"] for k, m in speed.items()},
            False,
            ".3f",
        ),
        ("Claims not in the scan — fewer is better", checks, False, "d"),
    )
    row = st.container(horizontal=True, gap="medium", key="cmp_charts")
    for i, (title, values, higher, fmt) in enumerate(panels):
        shown = {k: v for k, v in values.items() if v is not None}
        with row.container(key=f"cmp_chart_{i}", width=CHART_PX):
            st.caption(title)
            left_out = [k for k in values if k not in shown]
            if fmt == "d" and shown and not any(shown.values()):
                st.markdown("**No claim outside the scan** in any complete answer.")
            elif shown:
                st.altair_chart(bars(shown, higher, fmt), width="stretch", key=f"cmp_bars_{i}")
            if left_out:
                st.caption(escape_markdown(f"Not measured: {', '.join(left_out)}."))


def verdict(store: Store, comp: Comparison) -> None:
    """The analyst's pick of the best answer (or a tie) with a note, saved on request."""
    ss = st.session_state
    st.subheader("Verdict")
    if ss.get("cmp_verdict_for") != comp.id:
        ss["cmp_verdict_for"] = comp.id
        ss["cmp_winner"] = comp.winner
        ss["cmp_note"] = comp.note
    options = [*comp.models, TIE]
    winner = st.radio(
        "Which answer is best?",
        options,
        key="cmp_winner",
        horizontal=True,
        format_func=lambda m: "A tie" if m == TIE else escape_markdown(m),
    )
    note = st.text_area("Note (optional)", key="cmp_note", max_chars=2000)
    if st.button("Save verdict", key="cmp_save", disabled=winner is None):
        try:
            judged = actions.save_verdict(
                ui.get_services(), ui.identity(), comp.id, str(winner), note
            )
        except (StoreError, ValueError, Forbidden) as exc:
            st.error(ui.escape_md_keep_code(f"The verdict was not saved: {exc}"))
        else:
            choice = "a tie" if judged.winner == TIE else escape_markdown(str(judged.winner))
            st.success(f"Saved: {choice} for {comp.id}.")
