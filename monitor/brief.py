"""The change brief: a short summary of a diff from Ollama, through the same grounded prompt and
fact check as "Summarize a diff", bounded by the Ollama timeout as a whole.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from llm.client import OllamaGateway
from llm.errors import LLMError
from llm.summarize import SummaryRun, prepare
from store.base import Store, StoreError

log = logging.getLogger(__name__)

UNSUPPORTED_MARK = " [not in the scan data — verify]"


@dataclass(frozen=True)
class Brief:
    """The brief's text (None when there is none) and a note on what happened."""

    text: str | None
    note: str = ""


def mark_unsupported(text: str, spans: list[tuple[int, int]]) -> str:
    """Put a visible mark after every claim the scan does not support."""
    for _, end in sorted(set(spans), key=lambda s: s[1], reverse=True):
        text = text[:end] + UNSUPPORTED_MARK + text[end:]
    return text


def make_brief(
    store: Store,
    gateway: OllamaGateway,
    report_id: str,
    base_report_id: str,
    model: str,
    timeout_s: float,
    owner: str = "",
) -> Brief:
    """Summarize the diff of two reports, or say why there is no brief; never longer than
    ``timeout_s`` in all (the model check, the first token and the stream together)."""
    box: dict[str, SummaryRun] = {}
    failure: list[str] = []
    ready = threading.Event()

    def start() -> None:
        try:
            run = prepare(
                store,
                gateway,
                report_id,
                model,
                "executive",
                base_report_id=base_report_id,
                owner=owner,
            )
            box["run"] = run
            run.start()
        except (LLMError, StoreError, ValueError) as exc:
            failure.append(str(exc))
        finally:
            ready.set()

    worker = threading.Thread(target=start, name="brief-start", daemon=True)
    worker.start()
    gave_up = "No brief: Ollama did not answer within {s:g} s (SCANSCRIBE_OLLAMA_TIMEOUT)."
    if not ready.wait(timeout_s):
        return Brief(None, gave_up.format(s=timeout_s))
    if failure:
        return Brief(None, f"No brief: {failure[0]}")
    run = box["run"]
    if not run.wait(timeout_s):
        run.stop()
        run.wait(5.0)
    summary = run.summary
    if not summary.text.strip():
        if summary.status == "complete":
            return Brief(None, "No brief: the model returned no text.")
        return Brief(None, gave_up.format(s=timeout_s) if not summary.error else summary.error)
    spans = run.fact_check.unsupported_spans() if run.fact_check else []
    text = mark_unsupported(summary.text, spans)
    note = f"Brief by {summary.model} (summary {summary.id})."
    if spans:
        note += " Claims marked 'not in the scan data — verify' are not supported by the scan."
    if summary.status != "complete":
        note += " The brief is incomplete: the model stopped or timed out part-way."
    return Brief(text, note)
