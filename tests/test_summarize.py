"""Summaries: saved as they stream, finished complete/stopped/failed, checked, recovered."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from llm.errors import LLMUnavailable, ModelMissing
from llm.summarize import prepare, recover_summaries, summarize
from scanner.models import Host, Port, Report
from services import Services
from store.base import NotFound, Store
from store.records import Summary
from tests.ollama_double import ModelScript, OllamaDouble

ANSWER = (
    "Host 10.0.0.5 exposes Telnet on 23/tcp. Host 10.0.0.77 has port 6379 open (CVE-2099-12345)."
)


def _poll(predicate: object, timeout: float = 10.0) -> bool:
    """Wait for a condition with a deadline (the store offers no notification)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


class CountingStore:
    """A real store that counts summary saves."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.saves: list[Summary] = []

    def save_summary(self, summary: Summary) -> None:
        self.saves.append(summary)
        self.inner.save_summary(summary)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_complete_summary_is_saved_with_fact_check_metrics_and_prompt_version(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(answer=ANSWER)
    run = summarize(
        llm_services.store, llm_services.llm, report.id, "llama3.2", audience="technical"
    )
    assert run.wait(10)
    saved = llm_services.store.get_summary(run.id)
    assert saved.status == "complete" and saved.text == ANSWER
    assert saved.model == "llama3.2:latest" and saved.audience == "technical"
    assert saved.prompt_version == "summary-v1" and saved.options["num_ctx"] == 8192
    assert saved.metrics["output_tokens"] == len(ANSWER.split(" "))
    assert saved.metrics["ttft_s"] is not None and saved.metrics["tokens_per_s"] > 0
    assert saved.fact_check["unsupported"] == [
        {"kind": "host", "value": "10.0.0.77"},
        {"kind": "port", "value": "6379"},
        {"kind": "cve", "value": "CVE-2099-12345"},
    ]
    assert {"kind": "port", "value": "23"} in saved.fact_check["supported"]
    assert saved.writer_pid is not None and saved.error == ""
    assert [s.id for s in llm_services.store.list_summaries(report.id)] == [run.id]


def test_summary_is_saved_while_it_streams(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    words = [f"w{i} " for i in range(80)]
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=words, chunk_delay_s=0.03)
    run = summarize(llm_services.store, llm_services.llm, report.id, "llama3.2")
    store = llm_services.store

    def partial_row() -> bool:
        s = store.get_summary(run.id)
        return s.status == "streaming" and 0 < len(s.text) < len("".join(words))

    assert _poll(partial_row, 5), "no partial text was saved while streaming"
    assert not run.finished
    run.stop()
    assert run.wait(5)
    final = store.get_summary(run.id)
    assert final.status == "stopped" and "".join(words).startswith(final.text)


def test_saves_about_once_a_second_not_on_every_chunk(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=["x"] * 120, chunk_delay_s=0.02)
    counting = CountingStore(llm_services.store)
    run = prepare(counting, llm_services.llm, report.id, "llama3.2")  # type: ignore[arg-type]
    run.start()
    assert run.wait(15)
    streaming = [s for s in counting.saves if s.status == "streaming"]
    seconds = run.job.metrics.total_s or 0.0
    assert seconds > 2.0
    # The first save, one at the first piece, then about one a second; never one per chunk.
    assert 3 <= len(streaming) <= 3 + seconds, (seconds, [len(s.text) for s in streaming])
    assert counting.saves[-1].status == "complete"


def test_stop_keeps_the_text_and_marks_it_stopped(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=["x"] * 400, chunk_delay_s=0.01)
    run = summarize(llm_services.store, llm_services.llm, report.id, "llama3.2")
    next(run.job.follow(window_s=0))
    run.stop()
    assert run.wait(5)
    saved = llm_services.store.get_summary(run.id)
    assert saved.status == "stopped" and 0 < len(saved.text) < 400
    assert ollama_double.wait_for(lambda d: bool(d.ends), 5)
    assert ollama_double.ends[0].how == "client_closed"


def test_mid_stream_error_keeps_partial_text_marked_failed(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=["a", "b", "c"], error_after=2)
    run = summarize(llm_services.store, llm_services.llm, report.id, "llama3.2")
    assert run.wait(5)
    saved = llm_services.store.get_summary(run.id)
    assert saved.status == "failed" and saved.text == "ab"
    assert "stopped part-way" in saved.error and "kept" in saved.error


def test_stall_ends_in_a_timeout_with_the_text_kept(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=["a", "b"], stall_after=1)
    run = summarize(llm_services.store, llm_services.llm, report.id, "llama3.2")
    assert run.wait(10)
    saved = llm_services.store.get_summary(run.id)
    assert saved.status == "failed" and saved.text == "a"
    assert "sent nothing for 2 s" in saved.error


def test_reasoning_is_kept_apart_from_the_summary(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(
        answer="All good on 10.0.0.5.", thinking="The user wants a summary"
    )
    run = summarize(llm_services.store, llm_services.llm, report.id, "llama3.2")
    assert run.wait(5)
    saved = llm_services.store.get_summary(run.id)
    assert saved.text == "All good on 10.0.0.5." and saved.thinking.startswith("The user wants")
    assert "user wants" not in saved.text


def test_bad_inputs_are_refused_before_anything_is_saved(
    llm_services: Services, report: Report
) -> None:
    store, llm = llm_services.store, llm_services.llm
    with pytest.raises(NotFound):
        prepare(store, llm, "no-such-report", "llama3.2")
    with pytest.raises(ModelMissing):
        prepare(store, llm, report.id, "mistral:7b").start()
    with pytest.raises(ValueError, match="audience"):
        prepare(store, llm, report.id, "llama3.2", audience="board")
    assert store.list_summaries() == []


def test_a_model_removed_after_its_details_were_read_is_refused_and_nothing_is_kept(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    """The details are cached from an earlier summary; the installed list is asked again as
    the request goes out, and the request that went out for the missing model leaves no trace."""
    store, llm = llm_services.store, llm_services.llm
    first = summarize(store, llm, report.id, "llama3.2")
    assert first.wait(5)
    ollama_double.models.clear()
    run = prepare(store, llm, report.id, "llama3.2")
    with pytest.raises(ModelMissing, match=r"ollama pull llama3\.2"):
        run.start()
    assert run.job.wait(5)
    assert [s.id for s in store.list_summaries()] == [first.id]
    assert recover_summaries(store) == []


def test_a_slow_model_check_never_saves_over_an_answer_that_came_first(
    llm_services: Services, report: Report
) -> None:
    """The request goes out while the model is checked: text that arrives before the check
    returns waits for the first record and is saved after it, so the summary ends complete."""
    store, llm = llm_services.store, llm_services.llm
    run = prepare(store, llm, report.id, "llama3.2")
    check = run._check
    assert check is not None

    class Gate(threading.Event):
        """The run's decision, telling when the worker starts waiting for it."""

        def __init__(self) -> None:
            super().__init__()
            self.waited = threading.Event()

        def wait(self, timeout: float | None = None) -> bool:
            self.waited.set()
            return super().wait(timeout)

    gate = Gate()
    run._decided = gate

    def check_after_the_first_piece() -> str:
        assert gate.waited.wait(5)  # the worker holds text and waits to save it
        assert run.job.text
        return check()

    run._check = check_after_the_first_piece
    run.start()
    assert run.wait(5)
    saved = store.get_summary(run.id)
    assert (saved.status, saved.model) == ("complete", "llama3.2:latest")
    assert saved.text == run.job.text


def test_stop_while_the_model_reads_the_prompt_saves_the_summary_stopped_at_once(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(
        answer=ANSWER, first_token_delay_s=1.5, headers_with_first_token=True
    )
    run = summarize(llm_services.store, llm_services.llm, report.id, "llama3.2")
    assert ollama_double.wait_for(lambda d: d.active_streams == 1, timeout=5)
    run.stop()
    assert run.wait(0.5), "Stop waited for the model's first words"
    saved = llm_services.store.get_summary(run.id)
    assert (saved.status, saved.text) == ("stopped", "")
    assert ollama_double.wait_for(lambda d: bool(d.ends), timeout=5)
    assert llm_services.store.get_summary(run.id).status == "stopped"


def test_ollama_down_is_refused_with_how_to_start_it(
    llm_services: Services, report: Report
) -> None:
    from llm.client import OllamaGateway

    down = OllamaGateway("http://127.0.0.1:9", 1.0, 1.0)
    with pytest.raises(LLMUnavailable, match="ollama serve"):
        prepare(llm_services.store, down, report.id, "llama3.2").start()
    assert llm_services.store.list_summaries() == []


def test_a_diff_summary_records_both_reports(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    later = replace(
        report,
        id="r-later",
        created_at=report.created_at + 3600,
        hosts=(Host("10.0.0.5", ports=(Port(3389, "tcp", "open", service="ms-wbt-server"),)),),
    )
    llm_services.store.save_report(later)
    ollama_double.models["llama3.2:latest"] = ModelScript(
        answer="RDP opened on 10.0.0.5 (3389/tcp)."
    )
    run = summarize(
        llm_services.store, llm_services.llm, later.id, "llama3.2", base_report_id=report.id
    )
    assert run.wait(5)
    saved = llm_services.store.get_summary(run.id)
    assert (saved.report_id, saved.base_report_id) == ("r-later", report.id)
    assert saved.fact_check["unsupported"] == []
    user = ollama_double.chat_requests()[-1].body["messages"][1]["content"]
    assert "opened on 10.0.0.5 port 3389/tcp" in user
    assert [s.id for s in llm_services.store.list_summaries(report.id)] == [run.id]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recovery_marks_only_summaries_whose_writer_died(
    llm_services: Services, report: Report
) -> None:
    store = llm_services.store
    base = Summary(id="s", report_id=report.id, model="m", audience="executive", created_at=1.0)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as live:
        try:
            store.save_summary(replace(base, id="dead", text="partial", writer_pid=_dead_pid()))
            store.save_summary(replace(base, id="alive", writer_pid=live.pid))
            store.save_summary(replace(base, id="done", status="complete", writer_pid=_dead_pid()))
            assert recover_summaries(store) == ["dead"]
        finally:
            live.kill()
    dead = store.get_summary("dead")
    assert dead.status == "interrupted" and dead.text == "partial" and "stopped" in dead.error
    assert store.get_summary("alive").status == "streaming"
    assert store.get_summary("done").status == "complete"


def test_recovery_leaves_a_summary_this_process_is_writing(
    llm_services: Services, ollama_double: OllamaDouble, report: Report
) -> None:
    ollama_double.models["llama3.2:latest"] = ModelScript(chunks=["x"] * 50, chunk_delay_s=0.02)
    run = summarize(llm_services.store, llm_services.llm, report.id, "llama3.2")
    assert recover_summaries(llm_services.store) == []
    assert run.wait(5)
    assert llm_services.store.get_summary(run.id).status == "complete"
