"""Model comparisons against the Ollama double: real concurrency, stop one, saved and reopened."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm.client import ModelInfo, OllamaGateway, RunningModel
from llm.compare import (
    TIE,
    ComparisonRefused,
    ComparisonRun,
    Limits,
    Subject,
    assess_capacity,
    check_capacity,
    check_models,
    coverage,
    focus_of,
    is_running,
    limits_from_env,
    set_verdict,
)
from llm.errors import LLMUnavailable, ModelMissing
from scanner.models import Host, Port, Report
from store.base import StoreUnavailable
from store.firestore import FirestoreStore
from store.records import Comparison
from store.sqlite import SQLiteStore
from tests import compare_support as cs
from tests.fixtures_firestore import Emulator
from tests.ollama_double import ModelScript, OllamaDouble


@pytest.fixture
def double() -> Iterator[OllamaDouble]:
    """fast answers at once; slow waits 1.5 s for its first token; stall stops after 3 words."""
    d = cs.double(
        fast__latest=ModelScript(answer=cs.GROUNDED, chunk_delay_s=0.005),
        slow__latest=ModelScript(answer=cs.INVENTED, first_token_delay_s=1.5, chunk_delay_s=0.02),
        stall__latest=ModelScript(answer=cs.words(30), stall_after=3),
        steady__latest=ModelScript(answer=cs.words(25, "s"), chunk_delay_s=0.04),
        drop__latest=ModelScript(answer=cs.words(20, "d"), drop_after=4),
    )
    yield d
    d.stop()


@pytest.fixture
def gateway(double: OllamaDouble) -> Iterator[OllamaGateway]:
    """The real gateway (official ollama client) pointed at the double."""
    gw = OllamaGateway(double.url, connect_timeout_s=2.0, read_timeout_s=10.0)
    yield gw
    gw.close()


@pytest.fixture
def subject(sqlite_store: SQLiteStore) -> Subject:
    """The two-host report, saved."""
    rep = cs.report()
    sqlite_store.save_report(rep)
    return Subject(rep)


def _run(
    gateway: OllamaGateway,
    store: SQLiteStore,
    subject: Subject,
    *models: str,
    audience: str = "executive",
    warmup: bool = False,
) -> ComparisonRun:
    return ComparisonRun(gateway, store, subject, list(models), audience, warmup=warmup).start()


def test_slow_model_does_not_hold_up_the_fast_one(
    gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    run = _run(gateway, sqlite_store, subject, "slow:latest", "fast:latest")
    fast, slow = run.lanes[1], run.lanes[0]
    assert cs.poll(lambda: fast.job.finished, timeout=5)
    # The fast answer is complete while the slow one has not even sent its first token.
    assert fast.job.state == "complete"
    assert slow.job.state == "running" and slow.job.text == ""

    # The store soon holds the fast answer complete while the slow one is still streaming.
    def saved() -> dict[str, dict[str, object]]:
        return {r["model"]: r for r in sqlite_store.get_comparison(run.id).results}

    assert cs.poll(lambda: saved()["fast:latest"]["status"] == "complete", timeout=1)
    partial = saved()
    assert partial["fast:latest"]["text"] == cs.GROUNDED
    assert partial["slow:latest"]["status"] == "streaming"
    assert run.wait(10)
    assert slow.job.state == "complete"
    fast_total = fast.job.metrics.total_s
    slow_total = slow.job.metrics.total_s
    assert fast_total is not None and slow_total is not None
    assert fast_total < 0.5 and slow_total > 1.5
    assert fast_total < slow_total / 3


def test_every_model_gets_the_same_prompt_options_and_seed(
    double: OllamaDouble, gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    run = _run(gateway, sqlite_store, subject, "fast:latest", "steady:latest", "stall:latest")
    assert cs.poll(lambda: run.lanes[2].job.text != "", timeout=5)
    run.stop("stall:latest")
    assert run.wait(10)
    bodies = [r.body for r in double.chat_requests() if r.path == "/api/chat"]
    assert sorted(b["model"] for b in bodies) == ["fast:latest", "stall:latest", "steady:latest"]
    assert all(b["messages"] == bodies[0]["messages"] for b in bodies)
    assert all(b["options"] == bodies[0]["options"] for b in bodies)
    assert "seed" in bodies[0]["options"]
    assert run.comparison is not None
    assert run.comparison.options["seed"] == bodies[0]["options"]["seed"]


def test_stopping_one_model_leaves_the_others_running(
    double: OllamaDouble, gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    run = _run(gateway, sqlite_store, subject, "stall:latest", "steady:latest")
    stall, steady = run.lanes
    assert cs.poll(lambda: len(stall.job.text.split()) == 3, timeout=5)
    assert not steady.job.finished  # the stop below happens while the other one streams
    run.stop(0)
    assert cs.poll(lambda: stall.job.finished, timeout=5)
    assert not steady.job.finished
    assert run.wait(10)
    comp = sqlite_store.get_comparison(run.id)
    by_model = {r["model"]: r for r in comp.results}
    assert by_model["stall:latest"]["status"] == "stopped"
    assert by_model["stall:latest"]["text"] == "w0 w1 w2"  # what arrived is kept
    assert by_model["steady:latest"]["status"] == "complete"
    assert by_model["steady:latest"]["text"] == cs.words(25, "s")
    # Closing the stream is how Ollama is told to stop generating.
    assert double.wait_for(
        lambda d: any(e.model == "stall:latest" and e.how == "client_closed" for e in d.ends)
    )


def test_a_model_failing_mid_stream_keeps_its_text_and_spares_the_others(
    gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    run = _run(gateway, sqlite_store, subject, "drop:latest", "fast:latest")
    assert run.wait(10)
    assert run.comparison is not None
    by_model = {r["model"]: r for r in run.comparison.results}
    assert by_model["drop:latest"]["status"] == "failed"
    assert by_model["drop:latest"]["text"] == "d0 d1 d2 d3"
    assert "stopped part-way" in by_model["drop:latest"]["error"]
    assert by_model["fast:latest"]["status"] == "complete"


def test_saved_comparison_reopens_identical_with_its_verdict(
    gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject, db_path: Path
) -> None:
    run = _run(gateway, sqlite_store, subject, "fast:latest", "slow:latest", audience="technical")
    assert run.wait(10)
    assert run.comparison is not None and run.save_error == ""
    reopened = SQLiteStore(db_path)
    try:
        assert reopened.get_comparison(run.id) == run.comparison
        assert run.comparison.winner is None
        judged = set_verdict(sqlite_store, run.id, "fast:latest", "  grounded and complete ")
        again = reopened.get_comparison(run.id)
        assert again == judged
        assert (again.winner, again.note) == ("fast:latest", "grounded and complete")
        assert again.results == run.comparison.results
        assert again.audience == "technical" and again.models == ("fast:latest", "slow:latest")
    finally:
        reopened.close()


def test_each_answer_is_fact_checked_and_its_coverage_kept(
    gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    run = _run(gateway, sqlite_store, subject, "fast:latest", "slow:latest")
    assert run.wait(10)
    comp = sqlite_store.get_comparison(run.id)
    fast, slow = comp.results
    assert fast["unsupported_claims"] == []
    assert {"kind": "host", "value": "127.0.0.2"} in fast["fact_check"]["supported"]
    assert {(c["kind"], c["value"]) for c in slow["unsupported_claims"]} >= {
        ("host", "10.9.9.9"),
        ("port", "8443"),
        ("cve", "CVE-2021-44228"),
    }
    assert fast["coverage"]["hosts_missed"] == []
    assert [p["port"] for p in fast["coverage"]["ports_missed"]] == []
    assert sorted(p["port"] for p in fast["coverage"]["ports_mentioned"]) == [23, 6379]
    assert slow["coverage"]["hosts_missed"] == ["127.0.0.2"]
    assert [(p["port"], p["level"]) for p in slow["coverage"]["ports_missed"]] == [(23, "high")]
    assert [(p["port"], p["level"]) for p in slow["coverage"]["ports_mentioned"]] == [
        (6379, "critical")
    ]


def test_warm_up_loads_every_model_first_and_keeps_load_time_apart(
    double: OllamaDouble, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    double.models["fast:latest"].load_duration_ns = 2_500_000_000
    double.models["steady:latest"].load_duration_ns = 700_000_000
    gw = OllamaGateway(double.url, 2.0, 10.0)
    try:
        run = _run(gw, sqlite_store, subject, "fast:latest", "steady:latest", warmup=True)
        assert run.wait(10)
    finally:
        gw.close()
    calls = [(r.path, r.body.get("model")) for r in double.chat_requests()]
    loads = [c for c in calls if c[0] == "/api/generate"]
    assert sorted(str(m) for _, m in loads) == ["fast:latest", "steady:latest"]
    first_chat = next(i for i, c in enumerate(calls) if c[0] == "/api/chat")
    assert all(calls.index(c) < first_chat for c in loads)
    warm_bodies = [r.body for r in double.chat_requests() if r.path == "/api/generate"]
    assert all(b["prompt"] == "" for b in warm_bodies)
    assert run.comparison is not None
    metrics = {r["model"]: r["metrics"] for r in run.comparison.results}
    assert metrics["fast:latest"]["warmup_load_s"] == pytest.approx(2.5)
    assert metrics["steady:latest"]["warmup_load_s"] == pytest.approx(0.7)
    assert metrics["fast:latest"]["warmup_s"] > 0


def test_a_failed_warm_up_fails_that_model_only(
    double: OllamaDouble, gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    run = _run(gateway, sqlite_store, subject, "fast:latest", "gone:latest", warmup=True)
    assert run.wait(10)
    assert run.comparison is not None
    by_model = {r["model"]: r for r in run.comparison.results}
    assert by_model["gone:latest"]["status"] == "failed"
    assert "ollama pull gone:latest" in by_model["gone:latest"]["error"]
    assert by_model["fast:latest"]["status"] == "complete"
    assert [r.body["model"] for r in double.chat_requests() if r.path == "/api/chat"] == [
        "fast:latest"
    ]


def test_a_diff_is_compared_on_what_changed(
    gateway: OllamaGateway, sqlite_store: SQLiteStore
) -> None:
    old = Report(
        "rep-old",
        targets=("127.0.0.1",),
        created_at=1.0,
        hosts=(Host("127.0.0.1", ports=(Port(22, "tcp", "open", service="ssh"),)),),
    )
    new = cs.report("rep-new")
    subject = Subject(new, old)
    run = _run(gateway, sqlite_store, subject, "fast:latest", "slow:latest")
    assert "changed" in run.prompt.messages[0]["content"]
    assert run.wait(10)
    assert run.comparison is not None
    assert (run.comparison.report_id, run.comparison.base_report_id) == ("rep-new", "rep-old")
    focus = focus_of(subject)
    # New host 127.0.0.2, and on 127.0.0.1 the opened telnet and redis ports.
    assert sorted(h.address for h in focus.hosts) == ["127.0.0.1", "127.0.0.2"]
    assert sorted(p.port for _, p, _ in focus.ports) == [23, 6379]


def test_coverage_matches_whole_numbers_and_names_only() -> None:
    focus = focus_of(Subject(cs.report()))
    cov = coverage("Hosts 127.0.0.10 and 10.127.0.0.1 answer; port 2323 and 63790 too.", focus)
    assert cov["hosts_mentioned"] == [] and cov["ports_mentioned"] == []
    cov = coverage("TELNET is open on the first host; Redis too.", focus)
    assert sorted(p["port"] for p in cov["ports_mentioned"]) == [23, 6379]


def test_model_choice_is_checked_before_anything_runs() -> None:
    installed = [ModelInfo("fast:latest", 1), ModelInfo("slow:latest", 1)]
    with pytest.raises(ComparisonRefused, match="2 to 4 models; 1 given"):
        check_models(["fast"])
    with pytest.raises(ComparisonRefused, match="2 to 4 models; 5 given"):
        check_models(["a", "b", "c", "d", "e"])
    with pytest.raises(ComparisonRefused, match="chosen twice"):
        check_models(["fast", "fast:latest"])
    with pytest.raises(ModelMissing, match="ollama pull nope"):
        check_models(["fast", "nope"], installed)
    assert check_models(["fast", "slow"], installed) == ["fast:latest", "slow:latest"]


def test_verdict_must_name_a_model_of_the_comparison_or_a_tie(sqlite_store: SQLiteStore) -> None:
    sqlite_store.save_comparison(
        Comparison(id="c1", report_id="r", audience="executive", models=("a", "b"))
    )
    with pytest.raises(ComparisonRefused, match="did not take part"):
        set_verdict(sqlite_store, "c1", "c")
    assert sqlite_store.get_comparison("c1").winner is None
    assert set_verdict(sqlite_store, "c1", TIE).winner == TIE


GB = 1_000_000_000


def test_capacity_refuses_more_models_than_ollama_keeps_loaded() -> None:
    installed = [ModelInfo(m, 4 * GB) for m in ("a", "b", "c")]
    cap = assess_capacity(["a", "b", "c"], installed, [], Limits(max_loaded=2))
    assert not cap.ok
    assert "OLLAMA_MAX_LOADED_MODELS=2" in cap.reasons[0]
    assert "one after another" in cap.reasons[0]
    assert assess_capacity(["a", "b"], installed, [], Limits(max_loaded=2)).ok


def test_capacity_refuses_models_that_do_not_fit_in_memory() -> None:
    installed = [ModelInfo("a", 4 * GB), ModelInfo("b", 5 * GB)]
    cap = assess_capacity(["a", "b"], installed, [], Limits(memory_bytes=8 * GB))
    assert not cap.ok and "9.0 GB" in cap.reasons[0] and "8.0 GB" in cap.reasons[0]
    assert assess_capacity(["a", "b"], installed, [], Limits(memory_bytes=10 * GB)).ok


def test_capacity_unknown_limits_are_only_explained() -> None:
    installed = [ModelInfo(m, GB) for m in "abcd"]
    cap = assess_capacity(list("abcd"), installed, [], Limits())
    assert cap.ok and "OLLAMA_MAX_LOADED_MODELS" in cap.notes[0]
    running = [RunningModel("a", GB, GB)]
    assert assess_capacity(["a", "b"], installed, running, Limits(num_parallel=4)).ok


def test_capacity_warns_when_api_ps_shows_ollama_at_its_limit(
    double: OllamaDouble, gateway: OllamaGateway
) -> None:
    # The double's /api/ps shows its first model (fast) loaded.
    cap = check_capacity(gateway, ["slow:latest", "steady:latest"], Limits(max_loaded=2))
    assert cap.loaded == ("fast:latest",)
    assert not cap.ok
    assert "already holds 1 other model(s) (fast:latest)" in cap.reasons[0]
    assert check_capacity(gateway, ["fast:latest", "slow:latest"], Limits(max_loaded=2)).ok
    assert check_capacity(gateway, ["slow:latest", "steady:latest"], Limits(max_loaded=3)).ok


def test_limits_come_from_the_environment_when_set() -> None:
    limits = limits_from_env(
        {
            "OLLAMA_MAX_LOADED_MODELS": "2",
            "OLLAMA_NUM_PARALLEL": "4",
            "SCANSCRIBE_OLLAMA_MEMORY_GB": "16",
        }
    )
    assert limits == Limits(2, 4, 16 * GB)
    assert limits_from_env({"OLLAMA_MAX_LOADED_MODELS": "lots"}) == Limits()


def test_ollama_down_fails_every_model_with_the_fix(sqlite_store: SQLiteStore) -> None:
    gw = OllamaGateway("http://127.0.0.1:9", 1.0, 2.0)
    rep = cs.report()
    sqlite_store.save_report(rep)
    run = ComparisonRun(gw, sqlite_store, Subject(rep), ["a", "b"]).start()
    assert run.wait(10)
    assert run.comparison is not None
    assert [r["status"] for r in run.comparison.results] == ["failed", "failed"]
    assert all("ollama serve" in r["error"] for r in run.comparison.results)
    with pytest.raises(LLMUnavailable):
        check_capacity(gw, ["a", "b"], Limits())
    gw.close()


def test_the_comparison_is_recorded_before_any_model_answers(
    gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    started = time.time()
    run = _run(gateway, sqlite_store, subject, "slow:latest", "stall:latest")
    first = sqlite_store.get_comparison(run.id)
    assert first.created_at >= started - 1
    assert [r["status"] for r in first.results] == ["streaming", "streaming"]
    run.stop_all()
    assert run.wait(10)
    assert [r["status"] for r in sqlite_store.get_comparison(run.id).results] == [
        "stopped",
        "stopped",
    ]


def test_partial_answers_are_saved_while_they_stream(
    gateway: OllamaGateway, sqlite_store: SQLiteStore, subject: Subject
) -> None:
    run = _run(gateway, sqlite_store, subject, "stall:latest", "steady:latest")

    def saved_stall() -> dict[str, object]:
        return next(
            r for r in sqlite_store.get_comparison(run.id).results if r["model"] == "stall:latest"
        )

    # The stalled model sent three words and nothing since: they are in the store all the same.
    assert cs.poll(lambda: saved_stall()["text"] == "w0 w1 w2", timeout=5)
    assert saved_stall()["status"] == "streaming"
    assert is_running(run.id)
    run.stop_all()
    assert run.wait(10)
    assert not is_running(run.id)


class _RefusingStore(SQLiteStore):
    """A real SQLite store that refuses comparison writes once told to (a full disk, say)."""

    refuse = False

    def save_comparison(self, comparison: Comparison) -> None:
        if self.refuse:
            raise StoreUnavailable("The disk holding the database is full.")
        super().save_comparison(comparison)


def test_a_store_that_refuses_the_final_save_keeps_the_answers_in_memory(
    gateway: OllamaGateway, db_path: Path
) -> None:
    store = _RefusingStore(db_path)
    rep = cs.report()
    store.save_report(rep)
    run = ComparisonRun(gateway, store, Subject(rep), ["fast:latest", "stall:latest"]).start()
    assert cs.poll(lambda: run.lanes[0].job.finished and run.lanes[1].job.text != "", timeout=5)
    store.refuse = True
    run.stop_all()
    assert run.wait(10)
    assert "disk holding the database is full" in run.save_error
    assert run.comparison is not None
    assert run.comparison.results[0]["text"] == cs.GROUNDED
    store.close()


def test_a_store_that_refuses_the_first_save_stops_the_comparison_before_any_model_runs(
    double: OllamaDouble, gateway: OllamaGateway, db_path: Path
) -> None:
    store = _RefusingStore(db_path)
    store.refuse = True
    with pytest.raises(StoreUnavailable):
        ComparisonRun(gateway, store, Subject(cs.report()), ["fast", "slow"]).start()
    assert double.chat_requests() == []
    store.close()


@pytest.mark.emulator
def test_with_firestore_the_comparison_lands_in_model_comparisons(
    gateway: OllamaGateway,
    firestore_store: FirestoreStore,
    firestore_emulator: Emulator,
    firestore_project: str,
) -> None:
    rep = cs.report()
    firestore_store.save_report(rep)
    run = ComparisonRun(gateway, firestore_store, Subject(rep), ["fast:latest", "steady:latest"])
    run.start()
    assert run.wait(20)
    assert run.save_error == ""
    assert firestore_store.get_comparison(run.id) == run.comparison
    docs = firestore_emulator.documents(firestore_project, "model_comparisons")
    assert list(docs) == [run.id]
    judged = set_verdict(firestore_store, run.id, TIE, "both fine")
    assert firestore_store.get_comparison(run.id) == judged
